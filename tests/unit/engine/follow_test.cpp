// Following records as they commit: in commit order, per function or all, resumed exactly after a reconnect and
// from the store after a restart, and a follower that falls behind is dropped instead of holding anything up.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

using nlohmann::json;
using testing::TempDir;

constexpr const char* add_code = "def main(a, b):\n    return a + b\n";

std::string call(Engine& engine, const std::string& name, int a) {
  return json::parse(engine.invoke(name, json::array({a, 1})).json)["id"];
}

// Takes until `count` records came, or two seconds passed.
std::vector<json> take(RecordFollower& follower, std::size_t count) {
  std::vector<json> records;
  while (records.size() < count && follower.wait(std::chrono::seconds(2))) {
    for (const auto& record : follower.take()) {
      auto parsed = json::parse(record->json);
      EXPECT_EQ(parsed["id"], record->id);
      EXPECT_EQ(parsed["function"], record->function);
      records.push_back(std::move(parsed));
    }
  }
  return records;
}

FollowOptions following(std::string function, std::string after = {}) {
  FollowOptions options;
  options.function = std::move(function);
  options.after = std::move(after);
  return options;
}

struct FollowTest : ::testing::Test {
  TempDir dir;
};

TEST_F(FollowTest, AFollowerGetsEachNewRecordOfItsFunctionInOrder) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("add", add_code);
  engine.upload("other", add_code);
  call(engine, "add", 0);  // before it followed: not offered
  int wakes = 0;
  auto add_only = engine.follow(following("add"), [&] { ++wakes; });
  auto all = engine.follow({});
  std::vector<std::string> ids;
  for (int i = 1; i <= 3; ++i) {
    ids.push_back(call(engine, "add", i));
    call(engine, "other", i);
  }
  auto records = take(*add_only, 3);
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(records[i]["id"], ids[i]);
    EXPECT_EQ(records[i]["result"], static_cast<int>(i) + 2);
  }
  EXPECT_GE(wakes, 1);
  EXPECT_EQ(take(*all, 6).size(), 6u) << "both functions' records";
  EXPECT_THROW(engine.follow(following("missing")), Error);
  EXPECT_THROW(engine.follow(following("", "x' OR 1=1")), Error);
}

TEST_F(FollowTest, FollowingAgainAfterTheLastIdTakenMissesNothingAndRepeatsNothing) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("add", add_code);
  std::string last;
  {
    auto follower = engine.follow(following("add"));
    call(engine, "add", 1);
    auto first = take(*follower, 1);
    ASSERT_EQ(first.size(), 1u);
    last = first.back()["id"];
  }  // the follower went away; two calls while it is away
  auto missed = std::vector{call(engine, "add", 2), call(engine, "add", 3)};
  auto again = engine.follow(following("add", last));
  auto next = call(engine, "add", 4);
  auto records = take(*again, 3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["id"], missed[0]);
  EXPECT_EQ(records[1]["id"], missed[1]);
  EXPECT_EQ(records[2]["id"], next);
  EXPECT_TRUE(again->take().empty()) << "offered before invoke() returned; nothing more";
}

TEST_F(FollowTest, AfterARestartTheStoreReplaysWhatCameSinceTheLastId) {
  std::string last;
  std::vector<std::string> later;
  {
    Engine engine(testing::test_config(dir.path()));
    engine.upload("add", add_code);
    last = call(engine, "add", 1);
    later = {call(engine, "add", 2), call(engine, "add", 3)};
  }
  Engine engine(testing::test_config(dir.path()));
  auto follower = engine.follow(following("add", last));
  auto records = take(*follower, 2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["id"], later[0]);
  EXPECT_EQ(records[1]["id"], later[1]);
}

TEST_F(FollowTest, AFollowerThatFallsBehindIsDroppedAndTheEngineGoesOn) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("add", add_code);
  auto options = following("");
  options.max_buffered = 2;
  auto slow = engine.follow(options);
  for (int i = 0; i < 5; ++i) call(engine, "add", i);  // never taken meanwhile
  EXPECT_TRUE(slow->dropped());
  EXPECT_TRUE(slow->take().empty()) << "its records were let go";
  EXPECT_EQ(engine.status().invocations, 5u);
}

}  // namespace
}  // namespace faas
