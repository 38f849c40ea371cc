// Per-function settings: the merge patch and its refusals, the admin's view, the store, and their effect on calls.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

using nlohmann::json;
using testing::TempDir;

TEST(FunctionSettingsPatch, SetsResetsAndMergesVariables) {
  FunctionSettings settings;
  apply_settings_patch(settings, json::parse(R"({"timeout": 2.5, "memory_mb": 256, "network": "none",
      "public": true, "env": {"A": "1", "B": "2"}, "secrets": {"TOKEN": "t"}})"));
  EXPECT_EQ(settings.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(settings.memory_mb, 256u);
  EXPECT_EQ(settings.network, FunctionNetwork::none);
  EXPECT_EQ(settings.is_public, true);
  apply_settings_patch(settings, json::parse(R"({"timeout": null, "env": {"A": null, "C": "3"}})"));
  EXPECT_FALSE(settings.timeout);
  EXPECT_EQ(settings.env, (std::map<std::string, std::string>{{"B", "2"}, {"C", "3"}}));
  EXPECT_EQ(settings.secrets.at("TOKEN"), "t");
  apply_settings_patch(settings, json::parse(R"({"secrets": null})"));
  EXPECT_TRUE(settings.secrets.empty());
}

TEST(FunctionSettingsPatch, RefusesBadInputAndChangesNothing) {
  FunctionSettings settings;
  apply_settings_patch(settings, json::parse(R"({"timeout": 5, "env": {"KEEP": "x"}})"));
  const FunctionSettings before = settings;
  for (const char* bad : {R"([])", R"({"bogus": 1})", R"({"timeout": 0})", R"({"timeout": "5"})",
                          R"({"timeout": 1e9})", R"({"memory_mb": 10})", R"({"memory_mb": -1})",
                          R"({"max_workers": 0})", R"({"min_workers": 5, "max_workers": 2})",
                          R"({"max_concurrency": 1.5})", R"({"network": "bridge"})", R"({"public": "yes"})",
                          R"({"env": ["A"]})", R"({"env": {"1A": "x"}})", R"({"env": {"LD_PRELOAD": "x"}})",
                          R"({"env": {"PYTHONPATH": "x"}})", R"({"env": {"FAAS_X": "x"}})", R"({"env": {"PATH": "x"}})",
                          R"({"env": {"A": 1}})", R"({"env": {"A-B": "x"}})", R"({"secrets": {"KEEP": "x"}})",
                          R"({"timeout": 1, "env": {"OK": "x", "BAD=": "y"}})"}) {
    SCOPED_TRACE(bad);
    try {
      apply_settings_patch(settings, json::parse(bad));
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    }
    EXPECT_EQ(settings, before);
  }
  json many = json::object();
  for (int i = 0; i < 300; ++i) many["V" + std::to_string(i)] = "x";
  EXPECT_THROW(apply_settings_patch(settings, json{{"env", many}}), Error);
  EXPECT_THROW(apply_settings_patch(settings, json{{"env", {{"BIG", std::string(40000, 'x')}}}}), Error);
  EXPECT_THROW(apply_settings_patch(settings, json{{"env", {{"NUL", std::string("a\0b", 3)}}}}), Error);
}

TEST(FunctionSettingsView, ShowsDefaultsAndNeverASecretValue) {
  EngineConfig defaults;
  defaults.timeout = std::chrono::seconds(7);
  FunctionSettings settings;
  apply_settings_patch(settings, json::parse(R"({"max_workers": 2, "secrets": {"TOKEN": "hunter2"}})"));
  auto view = settings_view(settings, defaults);
  EXPECT_EQ(view["timeout"], 7.0);
  EXPECT_EQ(view["max_workers"], 2);
  EXPECT_EQ(view["public"], nullptr);
  EXPECT_EQ(view["secrets"], json::array({"TOKEN"}));
  EXPECT_NE(std::find(view["defaults"].begin(), view["defaults"].end(), "timeout"), view["defaults"].end());
  EXPECT_EQ(std::find(view["defaults"].begin(), view["defaults"].end(), "max_workers"), view["defaults"].end());
  EXPECT_EQ(view.dump().find("hunter2"), std::string::npos);
  EXPECT_EQ(from_stored(to_stored(settings)), settings);
}

class SettingsTest : public ::testing::Test {
 protected:
  TempDir dir;
};

TEST_F(SettingsTest, SettingsOutliveUploadsAndRestartsAndAreRefusedForUnknownFunctions) {
  {
    Engine engine(testing::test_config(dir.path()));
    engine.upload("f", "def main():\n    return 1\n");
    engine.update_settings("f", json::parse(R"({"timeout": 3, "secrets": {"S": "v"}})"));
    engine.upload("f", "def main():\n    return 2\n");
    EXPECT_EQ(engine.settings("f").timeout, std::chrono::seconds(3));
    EXPECT_EQ(engine.info("f").version, 2u);  // a settings change is no new version of the code
    auto revision = engine.info("f").revision;
    engine.update_settings("f", json::parse(R"({"timeout": 3})"));  // the same again: nothing to restart
    EXPECT_EQ(engine.info("f").revision, revision);
    engine.update_settings("f", json::parse(R"({"timeout": 4})"));
    EXPECT_GT(engine.info("f").revision, revision);
    engine.update_settings("f", json::parse(R"({"timeout": 3})"));
    EXPECT_EQ(engine.invoke("f", json::array()).record.result, "2");
    try {
      engine.update_settings("nope", json::object());
      ADD_FAILURE();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::not_found);
    }
  }
  Engine engine(testing::test_config(dir.path()));
  EXPECT_EQ(engine.settings("f").secrets.at("S"), "v");
  // Settings sent with an upload come in with it.
  engine.upload("g", "def main():\n    return 1\n", std::nullopt, json::parse(R"({"public": true})"));
  EXPECT_EQ(engine.is_public("g"), true);
  EXPECT_EQ(engine.is_public("f"), std::nullopt);
  EXPECT_THROW(engine.upload("h", "def main():\n    return 1\n", std::nullopt, json::parse(R"({"x": 1})")), Error);
  EXPECT_THROW(engine.info("h"), Error);  // a bad patch builds nothing
}

TEST_F(SettingsTest, ATimeoutSetWithoutAnUploadTakesEffectAtTheNextCall) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("sleepy", "import time\ndef main(s):\n    time.sleep(s)\n    return 'woke'\n");
  EXPECT_TRUE(engine.invoke("sleepy", json::array({0.3})).record.ok());
  engine.update_settings("sleepy", json::parse(R"({"timeout": 0.1})"));
  auto late = engine.invoke("sleepy", json::array({0.3})).record;
  EXPECT_EQ(late.error_type, "Timeout");
  EXPECT_NE(late.error.find("0.1 s"), std::string::npos);
  engine.update_settings("sleepy", json::parse(R"({"timeout": null})"));
  EXPECT_TRUE(engine.invoke("sleepy", json::array({0.3})).record.ok());
}

TEST_F(SettingsTest, AChangeTheFunctionDoesNotImportUnderIsRefused) {
  auto config = testing::test_config(dir.path());
  config.isolation = Isolation::process;
  Engine engine(config);
  engine.upload("needs", "import os\nMODE = os.environ['MODE']\ndef main():\n    return MODE\n", std::nullopt,
                json::parse(R"({"env": {"MODE": "fast"}})"));
  try {
    engine.update_settings("needs", json::parse(R"({"env": {"MODE": null}})"));
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::build_failed);
    EXPECT_NE(std::string(e.what()).find("KeyError"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine.settings("needs").env.at("MODE"), "fast");
  EXPECT_EQ(engine.invoke("needs", json::array()).record.result, "\"fast\"");
}

TEST_F(SettingsTest, MaxConcurrencyRefusesCallsBeyondItAsOverloaded) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("slow", "import time\ndef main():\n    time.sleep(0.5)\n    return 1\n");
  engine.update_settings("slow", json::parse(R"({"max_concurrency": 1})"));
  std::promise<Outcome<InvocationResult>> first;
  InvokeRequest request;
  request.function = "slow";
  engine.invoke_async(request, [&first](Outcome<InvocationResult> outcome) { first.set_value(std::move(outcome)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  try {
    engine.invoke(request);
    ADD_FAILURE() << "a second call ran beside the first";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::overloaded);
    EXPECT_NE(std::string(e.what()).find("max_concurrency"), std::string::npos);
  }
  EXPECT_TRUE(first.get_future().get().ok());
  EXPECT_TRUE(engine.invoke(request).record.ok());  // its place was given back
}

TEST_F(SettingsTest, ADatabaseFromBeforeSettingsIsUpgradedInPlace) {
  {
    Engine engine(testing::test_config(dir.path()));
    engine.upload("old", "def main():\n    return 'kept'\n");
  }
  {  // what the previous schema looked like
    SQLite::Database db((dir.path() / "faas.db").string(), SQLite::OPEN_READWRITE);
    db.exec("ALTER TABLE functions DROP COLUMN settings");
    db.exec("ALTER TABLE functions DROP COLUMN revision");
    db.exec("DROP TABLE versions");
    db.exec("PRAGMA user_version=2");
  }
  Engine engine(testing::test_config(dir.path()));
  EXPECT_EQ(engine.invoke("old", json::array()).record.result, "\"kept\"");
  engine.update_settings("old", json::parse(R"({"env": {"A": "1"}})"));
  EXPECT_EQ(engine.settings("old").env.at("A"), "1");
  ASSERT_EQ(engine.versions("old").size(), 1u);  // its history starts with the version it had
  EXPECT_EQ(engine.upload("old", "def main():\n    return 'new'\n").version, 2u);
  engine.rollback("old", 1);
  EXPECT_EQ(engine.invoke("old", json::array()).record.result, "\"kept\"");
}

}  // namespace
}  // namespace faas
