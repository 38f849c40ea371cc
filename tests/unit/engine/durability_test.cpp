// Many callers, crashes and a second process: no acknowledged record is ever lost.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <SQLiteCpp/SQLiteCpp.h>

#include "faas/engine.hpp"
#include "test_support.hpp"
#include "util/subprocess.hpp"

namespace faas {
namespace {

using nlohmann::json;

constexpr const char* add_code = "def main(a, b):\n    return a + b\n";

TEST(Durability, EightThreadsTimesTwoThousandInvocationsAreAllRecorded) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  config.log_retention = 0;
  std::set<std::string> ids;
  std::mutex ids_mutex;
  {
    Engine engine(config);
    engine.upload("calc", add_code);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 2000; ++i) {
          auto result = engine.invoke("calc", json::array({t, i}));
          ASSERT_EQ(result.record.result, std::to_string(t + i));
          std::lock_guard lock(ids_mutex);
          ids.insert(result.record.id);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(engine.status().invocations, 16000u);
  }
  ASSERT_EQ(ids.size(), 16000u);
  Engine engine(config);
  auto logs = engine.logs("calc", 0);
  ASSERT_EQ(logs.size(), 16000u);
  std::set<std::string> stored;
  for (const auto& text : logs) stored.insert(json::parse(text)["id"].get<std::string>());
  EXPECT_EQ(stored, ids);
}

TEST(Durability, TheInboxKeepsAcceptedRequestsUntilTheyAreSettled) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  std::vector<std::string> ids;
  const std::string reply("\0reply\xff", 7);  // the frontend's bytes, kept as they are
  {
    Engine engine(config);
    engine.upload("calc", add_code);
    for (int i = 0; i < 3; ++i) {
      AcceptedRequest accepted{"mqtt", {}, reply};
      accepted.request.function = "calc";
      accepted.request.args = "[" + std::to_string(i) + ", 100000000000000000000000]";  // beyond 64 bits: kept exact
      accepted.request.request_id = "r" + std::to_string(i);
      std::promise<std::optional<Error>> committed;
      auto id = engine.accept(accepted, [&](std::optional<Error> failure) { committed.set_value(failure); });
      ASSERT_FALSE(committed.get_future().get());
      ASSERT_FALSE(id.empty());
      ids.push_back(id);
    }
    AcceptedRequest other{"http", {}, ""};
    other.request.function = "calc";
    engine.accept(other, [](std::optional<Error>) {});
    engine.settle(ids[1]);
  }  // as after a crash: the engine is gone, the inbox stays

  Engine engine(config);
  auto unsettled = engine.unsettled("mqtt");
  ASSERT_EQ(unsettled.size(), 2u);
  EXPECT_EQ(unsettled[0].request.invocation_id, ids[0]);
  EXPECT_EQ(unsettled[1].request.invocation_id, ids[2]);
  EXPECT_EQ(unsettled[1].request.args, "[2,100000000000000000000000]");
  EXPECT_EQ(unsettled[1].request.request_id, "r2");
  EXPECT_EQ(unsettled[1].reply, reply);
  EXPECT_EQ(engine.unsettled("http").size(), 1u);

  // Run again under the id it was accepted with, its record carries that id.
  auto rerun = unsettled[0].request;
  rerun.args = "[1, 2]";
  auto result = engine.invoke(rerun);
  EXPECT_EQ(result.record.id, ids[0]);
  EXPECT_TRUE(engine.record(ids[0]));
  engine.settle(ids[0]);
  engine.settle(ids[2]);
  engine.shutdown();
  Engine reopened(config);
  EXPECT_TRUE(reopened.unsettled("mqtt").empty());
}

// Starts engine_tool burst, reads acknowledged ids from its stdout, kills it with SIGKILL mid-burst.
std::vector<std::string> burst_then_kill(const std::filesystem::path& data_dir, std::size_t acknowledged) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::string program = testing::helper_program("engine_tool").string();
  std::string dir = data_dir.string();
  char* argv[] = {program.data(), const_cast<char*>("burst"), dir.data(), const_cast<char*>("calc"), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);

  std::vector<std::string> ids;
  std::string pending;
  char buffer[65536];
  bool killed = false;
  for (;;) {
    ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    pending.append(buffer, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n', start)) {
      ids.push_back(pending.substr(start, end - start));
      start = end + 1;
    }
    pending.erase(0, start);
    if (!killed && ids.size() >= acknowledged) {
      ::kill(pid, SIGKILL);  // mid-burst: 256 calls in flight, a batch likely half-written
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  return ids;  // everything the child printed was committed before it printed it
}

TEST(Durability, AProcessKilledMidBurstLosesNoAcknowledgedRecord) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  config.log_retention = 0;
  {
    Engine engine(config);
    engine.upload("calc", add_code);
  }
  auto ids = burst_then_kill(dir.path(), 3000);
  ASSERT_GE(ids.size(), 3000u);

  {
    SQLite::Database db((dir.path() / "faas.db").string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");
  }
  Engine engine(config);  // reopens cleanly after the crash
  std::set<std::string> stored;
  for (const auto& text : engine.logs("calc", 0)) stored.insert(json::parse(text)["id"].get<std::string>());
  std::size_t missing = 0;
  for (const auto& id : ids) missing += stored.count(id) == 0;
  EXPECT_EQ(missing, 0u) << "of " << ids.size() << " acknowledged";
  EXPECT_EQ(engine.invoke("calc", json::array({1, 2})).record.result, "3");
}

TEST(Durability, TwoProcessesOnOneDataDirSeeEachOthersUploadsAndDeletes) {
  testing::TempDir dir;
  Engine engine(testing::test_config(dir.path()));
  auto tool = testing::helper_program("engine_tool").string();
  auto run_tool = [&](std::vector<std::string> args) {
    args.insert(args.begin(), tool);
    auto result = run_process(args, {});
    ASSERT_TRUE(result.ok()) << result.output;
  };

  run_tool({"upload", dir.path().string(), "shared", "def main():\n    return 'from the other process'\n"});
  auto uploaded = std::chrono::steady_clock::now();
  std::string answer;
  while (std::chrono::steady_clock::now() - uploaded < std::chrono::seconds(1)) {
    try {
      answer = engine.invoke("shared", json::array()).record.result;
      break;
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::not_found);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_EQ(answer, "\"from the other process\"");

  run_tool({"upload", dir.path().string(), "shared", "def main():\n    return 'v2'\n"});
  auto updated = std::chrono::steady_clock::now();
  while (engine.invoke("shared", json::array()).record.result != "\"v2\"" &&
         std::chrono::steady_clock::now() - updated < std::chrono::seconds(1)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(engine.invoke("shared", json::array()).record.result, "\"v2\"");

  run_tool({"remove", dir.path().string(), "shared"});
  auto removed = std::chrono::steady_clock::now();
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() - removed < std::chrono::seconds(1)) {
    try {
      engine.invoke("shared", json::array());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } catch (const Error& e) {
      gone = e.code() == ErrorCode::not_found;
    }
  }
  EXPECT_TRUE(gone);
}

}  // namespace
}  // namespace faas
