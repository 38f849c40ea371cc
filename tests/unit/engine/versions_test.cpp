// Versions: every upload keeps a numbered version; a rollback makes a kept one current again; a call may be
// pinned to a kept version; records say which version ran.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::error_of;

std::string returning(int value) { return "def main():\n    return " + std::to_string(value) + "\n"; }

json run(Engine& engine, const std::string& name, std::uint64_t version = 0) {
  InvokeRequest request;
  request.function = name;
  request.version = version;
  return json::parse(engine.invoke(std::move(request)).json);
}

std::vector<std::uint64_t> kept(Engine& engine, const std::string& name) {
  std::vector<std::uint64_t> out;
  for (const auto& version : engine.versions(name)) out.push_back(version.version);
  return out;
}

void check_versions(const EngineConfig& config) {
  Engine engine(config);
  for (int v = 1; v <= 3; ++v) EXPECT_EQ(engine.upload("f", returning(v)).version, static_cast<std::uint64_t>(v));
  EXPECT_EQ(kept(engine, "f"), (std::vector<std::uint64_t>{3, 2, 1}));
  EXPECT_TRUE(engine.versions("f").front().current);
  auto record = run(engine, "f");
  EXPECT_EQ(record["result"], 3);
  EXPECT_EQ(record["version"], 3);

  EXPECT_EQ(engine.rollback("f", 1).version, 1u);
  record = run(engine, "f");
  EXPECT_EQ(record["result"], 1);
  EXPECT_EQ(record["version"], 1);
  EXPECT_EQ(engine.info("f").version, 1u);
  EXPECT_TRUE(engine.versions("f").back().current);

  // Pinned calls run the version they name, beside the current one.
  record = run(engine, "f", 2);
  EXPECT_EQ(record["result"], 2);
  EXPECT_EQ(record["version"], 2);
  EXPECT_EQ(record["function"], "f");
  EXPECT_EQ(run(engine, "f", 3)["result"], 3);
  EXPECT_EQ(run(engine, "f", 1)["result"], 1);
  EXPECT_EQ(run(engine, "f")["result"], 1);
  EXPECT_EQ(error_of([&] { run(engine, "f", 9); }), ErrorCode::not_found);
  EXPECT_EQ(error_of([&] { engine.rollback("f", 9); }), ErrorCode::not_found);
  EXPECT_EQ(error_of([&] { engine.rollback("nope", 1); }), ErrorCode::not_found);

  // The next upload gets a number above every version, and the logs say which version each call ran.
  EXPECT_EQ(engine.upload("f", returning(4)).version, 4u);
  EXPECT_EQ(run(engine, "f")["version"], 4);
  std::vector<int> versions;
  for (const auto& text : engine.logs("f", 0)) versions.push_back(json::parse(text)["version"].get<int>());
  EXPECT_EQ(versions, (std::vector<int>{3, 1, 2, 3, 1, 1, 4}));

  // A rollback to the current version changes nothing; one to a version with the same code still switches.
  EXPECT_EQ(engine.rollback("f", 4).version, 4u);
  EXPECT_EQ(engine.upload("f", returning(1)).version, 5u);
  EXPECT_EQ(engine.rollback("f", 1).version, 1u);
  EXPECT_EQ(run(engine, "f")["version"], 1);
}

class VersionsTest : public ::testing::Test {
 protected:
  TempDir dir;
};

TEST_F(VersionsTest, UploadsRollbacksAndPinnedCallsInProcess) { check_versions(testing::test_config(dir.path())); }

TEST_F(VersionsTest, UploadsRollbacksAndPinnedCallsInWorkers) {
  auto config = testing::test_config(dir.path());
  config.isolation = Isolation::process;
  check_versions(config);
}

TEST_F(VersionsTest, OnlyTheNewestAreKeptBesideTheCurrentOne) {
  auto config = testing::test_config(dir.path());
  config.keep_versions = 2;
  Engine engine(config);
  for (int v = 1; v <= 4; ++v) engine.upload("f", returning(v));
  EXPECT_EQ(kept(engine, "f"), (std::vector<std::uint64_t>{4, 3}));
  EXPECT_EQ(error_of([&] { run(engine, "f", 1); }), ErrorCode::not_found);
  engine.rollback("f", 3);
  engine.upload("f", returning(5));
  EXPECT_EQ(kept(engine, "f"), (std::vector<std::uint64_t>{5, 4}));
  EXPECT_EQ(run(engine, "f", 4)["result"], 4);
  engine.upload("f", returning(6));
  EXPECT_EQ(error_of([&] { run(engine, "f", 4); }), ErrorCode::not_found);  // dropped since its last call
}

TEST_F(VersionsTest, DeletingAFunctionForgetsItsVersions) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("f", returning(1));
  engine.upload("f", returning(2));
  EXPECT_EQ(run(engine, "f", 1)["result"], 1);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "functions" / ".versions" / "f" / "1" / "func.py"));
  engine.remove("f");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "functions" / ".versions" / "f"));
  EXPECT_EQ(error_of([&] { engine.versions("f"); }), ErrorCode::not_found);
  EXPECT_EQ(engine.upload("f", returning(7)).version, 1u);
  EXPECT_EQ(kept(engine, "f"), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(run(engine, "f")["result"], 7);
}

TEST_F(VersionsTest, ARequestBodyMayNameAVersion) {
  InvokeRequest request;
  parse_invoke_body(R"({"args": [1], "version": 3})", request);
  EXPECT_EQ(request.version, 3u);
  InvokeRequest again;
  parse_invoke_body(invoke_body(request), again);
  EXPECT_EQ(again.version, 3u);
  parse_invoke_body(R"({"args": [1], "version": null})", request);
  EXPECT_EQ(request.version, 0u);
  for (const char* bad : {R"({"version": 0})", R"({"version": -1})", R"({"version": 1.5})", R"({"version": "2"})",
                          R"({"version": [2]})", R"({"version": true})"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of([&] { parse_invoke_body(bad, request); }), ErrorCode::invalid_input);
  }
}

}  // namespace
}  // namespace faas
