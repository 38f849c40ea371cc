// Real virtualenvs and a real, offline pip install of wheels generated at test time.
#include <gtest/gtest.h>

#include <future>

#include <nlohmann/json.hpp>

#include "envs/venv_cache.hpp"
#include "faas/engine.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

using nlohmann::json;

TEST(Requirements, NormaliseAwayCommentsAndBlankLines) {
  EXPECT_EQ(envs::normalize_requirements("# c\n\n  pkg==1.0  \r\nother\n"), "pkg==1.0\nother\n");
  EXPECT_EQ(envs::normalize_requirements("# only comments\n\n"), "");
  EXPECT_EQ(envs::env_id(""), "");
  EXPECT_EQ(envs::env_id("a\n"), envs::env_id("a\n"));
  EXPECT_NE(envs::env_id("a\n"), envs::env_id("b\n"));
}

class Virtualenvs : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_wheel(wheels.path(), "faaspkg", "1.0");
    testing::make_wheel(wheels.path(), "faaspkg", "2.0");
    testing::use_offline_wheels(wheels.path());
  }
  testing::TempDir wheels;
  testing::TempDir dir;
};

TEST_F(Virtualenvs, InstallsRequirementsOfflineAndSharesIdenticalEnvs) {
  Engine engine(testing::test_config(dir.path()));
  const char* code = "import faaspkg\n\ndef main():\n    return faaspkg.VERSION\n";
  // Two uploads needing the same env at once build it once.
  auto first = std::async(std::launch::async, [&] { return engine.upload("one", code, "faaspkg==1.0\n"); });
  auto second = std::async(std::launch::async, [&] { return engine.upload("two", code, "# same\nfaaspkg==1.0\n"); });
  auto one = first.get();
  auto two = second.get();
  EXPECT_TRUE(one.has_requirements);
  EXPECT_EQ(one.env_id, two.env_id);
  EXPECT_EQ(engine.invoke("one", json::array()).record.result, "\"1.0\"");
  EXPECT_EQ(engine.invoke("two", json::array()).record.result, "\"1.0\"");
  std::size_t envs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "envs")) envs += entry.is_directory();
  EXPECT_EQ(envs, 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "functions" / "one" / "requirements.txt"));

  // A re-upload with unchanged requirements reuses the env (no pip run: fast).
  auto started = std::chrono::steady_clock::now();
  auto again = engine.upload("one", "import faaspkg\n\ndef main():\n    return faaspkg.VALUE\n", "faaspkg==1.0\n");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(500));
  EXPECT_EQ(again.env_id, one.env_id);
  EXPECT_EQ(engine.invoke("one", json::array()).record.result, "42");
}

TEST_F(Virtualenvs, APipFailureKeepsTheOldVersionAndReportsPipsOutput) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("f", "def main():\n    return 'old'\n");
  try {
    engine.upload("f", "def main():\n    return 'new'\n", "no-such-package==9.9\n");
    FAIL() << "pip failure accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::build_failed);
    EXPECT_NE(std::string(e.what()).find("No matching distribution"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine.invoke("f", json::array()).record.result, "\"old\"");
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "envs")) {
    EXPECT_EQ(entry.path().filename().string().rfind(".tmp-", 0), std::string::npos) << "leftover " << entry.path();
  }
}

}  // namespace
}  // namespace faas
