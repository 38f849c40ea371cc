// Asynchronous calls: retried with backoff, recorded per attempt, kept as dead letters when they fail every time,
// re-driven after a fix, run once per idempotency key, and taken up again after a restart.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <mutex>

#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

using nlohmann::json;
using testing::TempDir;

// Fails until a file named by its argument exists, counting its attempts in another.
constexpr const char* flaky_code =
    "import os\n"
    "def main(folder, needed):\n"
    "    count = os.path.join(folder, 'count')\n"
    "    n = int(open(count).read()) + 1 if os.path.exists(count) else 1\n"
    "    open(count, 'w').write(str(n))\n"
    "    if n < needed and not os.path.exists(os.path.join(folder, 'fixed')):\n"
    "        raise ValueError(f'attempt {n} failed')\n"
    "    return n\n";

// Collects what serve_async reports, and lets a test wait for it.
class Finished {
 public:
  Engine::AsyncFinished callback() {
    return [this](const AsyncCall& call, const std::string& record) {
      std::lock_guard lock(mutex_);
      records_.emplace_back(call.id, json::parse(record));
      changed_.notify_all();
    };
  }
  // The `nth` report of call `id` (a re-driven call is reported again).
  json wait_for(const std::string& id, int nth = 1) {
    std::unique_lock lock(mutex_);
    json found;
    bool seen = changed_.wait_for(lock, std::chrono::seconds(20), [&] {
      int seen_times = 0;
      for (const auto& [call, record] : records_) {
        if (call == id && ++seen_times == nth) found = record;
      }
      return !found.is_null();
    });
    EXPECT_TRUE(seen) << "call " << id << " never finished";
    return found;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<std::string, json>> records_;
};

std::string submit(Engine& engine, const std::string& function, const json& args, AsyncOptions options = {}) {
  InvokeRequest request;
  request.function = function;
  request.args = args.dump();
  std::promise<Outcome<std::string>> accepted;
  engine.submit_async("test", std::move(request), std::move(options),
                      [&accepted](Outcome<std::string> id) { accepted.set_value(std::move(id)); });
  auto outcome = accepted.get_future().get();
  if (!outcome.ok()) throw outcome.error();
  return outcome.value();
}

struct AsyncTest : ::testing::Test {
  TempDir dir;
  Finished finished;  // outlives the engines, which may report to it until they stop
  std::filesystem::path folder = dir.path() / "state";
  void SetUp() override { std::filesystem::create_directories(folder); }
};

TEST_F(AsyncTest, AFailingCallIsRetriedAndRecordedPerAttempt) {
  Engine engine(testing::test_config(dir.path() / "data"));
  engine.upload("flaky", flaky_code, std::nullopt, json{{"retry_delay", 0.01}});
  engine.serve_async("test", finished.callback());
  auto id = submit(engine, "flaky", {folder.string(), 3});
  auto record = finished.wait_for(id);
  EXPECT_EQ(record["status"], "success") << record.dump();
  EXPECT_EQ(record["result"], 3);
  EXPECT_EQ(record["attempt"], 3);
  EXPECT_EQ(record["id"], id + ".3");
  auto logs = json::parse(join_json_array(engine.logs("flaky")));
  ASSERT_EQ(logs.size(), 3u) << logs.dump();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(logs[i]["attempt"], i + 1);
    EXPECT_EQ(logs[i]["request_id"], record["request_id"]) << "every attempt carries the call's request_id";
  }
  EXPECT_EQ(logs[0]["error"], "attempt 1 failed");
  EXPECT_FALSE(engine.async_call(id)) << "a finished call leaves the queue";
}

TEST_F(AsyncTest, ACallThatAlwaysFailsIsADeadLetterUntilRedrivenAfterAFix) {
  Engine engine(testing::test_config(dir.path() / "data"));
  engine.upload("flaky", flaky_code, std::nullopt, json{{"retry_delay", 0.01}, {"max_attempts", 2}});
  engine.serve_async("test", finished.callback());
  auto id = submit(engine, "flaky", {folder.string(), 100});
  auto last = finished.wait_for(id);
  EXPECT_EQ(last["status"], "error");
  EXPECT_EQ(last["attempt"], 2);
  auto dead = engine.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, id);
  EXPECT_TRUE(dead[0].dead);
  EXPECT_EQ(dead[0].attempt, 2u);
  EXPECT_EQ(dead[0].error, "attempt 2 failed");
  EXPECT_EQ(dead[0].request.args, json::array({folder.string(), 100}).dump());

  std::ofstream(folder / "fixed") << "";
  engine.redrive(id);
  auto after = finished.wait_for(id, 2);
  EXPECT_EQ(after["id"], id + ".3") << "the next round's first attempt";
  EXPECT_TRUE(engine.dead_letters().empty());
  auto logs = json::parse(join_json_array(engine.logs("flaky")));
  ASSERT_EQ(logs.size(), 3u);
  EXPECT_EQ(logs[2]["status"], "success");
  EXPECT_EQ(logs[2]["attempt"], 3);
  EXPECT_THROW(engine.redrive(id), Error) << "no longer a dead letter";
}

TEST_F(AsyncTest, ADiscardedDeadLetterIsGone) {
  Engine engine(testing::test_config(dir.path() / "data"));
  engine.upload("fails", "def main():\n    raise RuntimeError('no')\n", std::nullopt, json{{"max_attempts", 1}});
  engine.serve_async("test", finished.callback());
  auto id = submit(engine, "fails", json::array());
  finished.wait_for(id);
  ASSERT_EQ(engine.dead_letters().size(), 1u);
  engine.discard_dead_letter(id);
  EXPECT_TRUE(engine.dead_letters().empty());
  EXPECT_THROW(engine.discard_dead_letter(id), Error);
}

TEST_F(AsyncTest, ADuplicateIdempotencyKeyRunsOnce) {
  Engine engine(testing::test_config(dir.path() / "data"));
  engine.upload("flaky", flaky_code);
  engine.serve_async("test", finished.callback());
  AsyncOptions options;
  options.idempotency_key = "order-17";
  auto first = submit(engine, "flaky", {folder.string(), 1}, options);
  auto second = submit(engine, "flaky", {folder.string(), 1}, options);
  EXPECT_EQ(first, second);
  finished.wait_for(first);
  EXPECT_EQ(submit(engine, "flaky", {folder.string(), 1}, options), first) << "also once it has run";
  engine.shutdown();
  Engine again(testing::test_config(dir.path() / "data"));
  again.serve_async("test", finished.callback());
  EXPECT_EQ(submit(again, "flaky", {folder.string(), 1}, options), first) << "also after a restart";
  EXPECT_EQ(json::parse(join_json_array(again.logs("flaky"))).size(), 1u);
}

TEST_F(AsyncTest, ACallWaitingForItsRetryIsTakenUpAfterARestart) {
  std::string id;
  {
    Engine engine(testing::test_config(dir.path() / "data"));
    engine.upload("flaky", flaky_code, std::nullopt, json{{"retry_delay", 3600}});
    engine.serve_async("test", finished.callback());
    id = submit(engine, "flaky", {folder.string(), 2});
    for (int i = 0; i < 200 && (!engine.async_call(id) || engine.async_call(id)->attempt < 2); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto waiting = engine.async_call(id);
    ASSERT_TRUE(waiting);
    EXPECT_EQ(waiting->attempt, 2u) << "the first attempt failed; the second waits an hour";
    EXPECT_EQ(waiting->error, "attempt 1 failed");
  }
  Engine engine(testing::test_config(dir.path() / "data"));
  engine.serve_async("test", finished.callback());  // takes it up at once
  auto record = finished.wait_for(id);
  EXPECT_EQ(record["status"], "success");
  EXPECT_EQ(record["attempt"], 2);
}

TEST_F(AsyncTest, BadCallsAreRefusedBeforeTheyAreKept) {
  Engine engine(testing::test_config(dir.path() / "data"));
  engine.upload("flaky", flaky_code);
  engine.serve_async("test", finished.callback());
  EXPECT_EQ(testing::error_of([&] { submit(engine, "nope", json::array()); }), ErrorCode::not_found);
  AsyncOptions too_many;
  too_many.max_attempts = 11;
  EXPECT_EQ(testing::error_of([&] { submit(engine, "flaky", json::array(), too_many); }), ErrorCode::invalid_input);
  AsyncOptions long_key;
  long_key.idempotency_key = std::string(300, 'k');
  EXPECT_EQ(testing::error_of([&] { submit(engine, "flaky", json::array(), long_key); }), ErrorCode::invalid_input);
}

}  // namespace
}  // namespace faas
