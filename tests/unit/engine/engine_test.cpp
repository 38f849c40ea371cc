// The engine end to end in one process: lifecycle, errors, output capture, timeouts, overload, restarts.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::error_of;

constexpr const char* add_code = "def main(a, b):\n    return a + b\n";

json record_of(const InvocationResult& result) { return json::parse(result.json); }

class EngineTest : public ::testing::Test {
 protected:
  TempDir dir;
};

TEST_F(EngineTest, UploadInvokeLogsRemove) {
  Engine engine(testing::test_config(dir.path()));
  auto info = engine.upload("calc", add_code);
  EXPECT_EQ(info.version, 1u);
  EXPECT_FALSE(info.has_requirements);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "functions" / "calc" / "func.py"));

  auto result = engine.invoke("calc", json::array({10, 20}));
  auto record = record_of(result);
  EXPECT_EQ(record["result"], 30);
  EXPECT_EQ(record["status"], "success");
  EXPECT_EQ(record["function"], "calc");
  EXPECT_EQ(record["args"], json::array({10, 20}));
  EXPECT_EQ(record["id"].get<std::string>().size(), 36u);
  EXPECT_EQ(record["request_id"].get<std::string>().size(), 36u);
  EXPECT_EQ(record["time_start"].get<std::string>().size(), 26u);
  EXPECT_GE(record["duration_ms"].get<double>(), 0.0);
  EXPECT_EQ(record["stdout"], "");

  InvokeRequest request;
  request.function = "calc";
  request.args = "[1]";
  request.kwargs = R"({"b": 2})";
  request.request_id = "mine";
  auto second = record_of(engine.invoke(request));
  EXPECT_EQ(second["result"], 3);
  EXPECT_EQ(second["request_id"], "mine");

  auto logs = engine.logs("calc", 10);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(json::parse(logs[0])["id"], record["id"]);  // oldest first
  EXPECT_EQ(json::parse(logs[1])["request_id"], "mine");
  EXPECT_EQ(engine.logs("calc", 1).size(), 1u);
  EXPECT_EQ(json::parse(engine.logs("calc", 1)[0])["request_id"], "mine");  // the newest
  EXPECT_EQ(engine.record(record["id"].get<std::string>()), std::optional<std::string>(logs[0]));

  ASSERT_EQ(engine.list().size(), 1u);
  EXPECT_EQ(engine.list()[0].name, "calc");
  engine.remove("calc");
  EXPECT_TRUE(engine.list().empty());
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "functions" / "calc"));
  EXPECT_EQ(error_of([&] { engine.invoke("calc", json::array({1, 2})); }), ErrorCode::not_found);
  EXPECT_EQ(error_of([&] { engine.logs("calc"); }), ErrorCode::not_found);
  EXPECT_EQ(error_of([&] { engine.remove("calc"); }), ErrorCode::not_found);
}

TEST_F(EngineTest, ReuploadReplacesTheCodeAndKeepsTheOldVersionWhenTheNewOneFails) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("f", "def main():\n    return 'v1'\n");
  EXPECT_EQ(record_of(engine.invoke("f", json::array()))["result"], "v1");

  auto v2 = engine.upload("f", "def main():\n    return 'v2'\n");
  EXPECT_EQ(v2.version, 2u);
  EXPECT_EQ(record_of(engine.invoke("f", json::array()))["result"], "v2");

  const char* broken[] = {"def main(:\n    pass\n",          // syntax error
                          "x = 1\n",                          // no main
                          "main = 3\n",                       // main not callable
                          "raise RuntimeError('at import')\n"};
  for (const char* code : broken) {
    try {
      engine.upload("f", code);
      ADD_FAILURE() << "accepted " << code;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::build_failed) << code;
      EXPECT_FALSE(std::string(e.what()).empty());
    }
    EXPECT_EQ(record_of(engine.invoke("f", json::array()))["result"], "v2") << code;
  }
  EXPECT_EQ(engine.info("f").version, 2u);
  EXPECT_EQ(error_of([&] { engine.upload("g", "def main(:\n"); }), ErrorCode::build_failed);
  EXPECT_EQ(error_of([&] { engine.info("g"); }), ErrorCode::not_found);  // a failed first upload leaves nothing
}

TEST_F(EngineTest, RefusesInvalidNamesEverywhere) {
  Engine engine(testing::test_config(dir.path()));
  for (const auto& name : {std::string("../x"), std::string(""), std::string(65, 'a'), std::string("a/b")}) {
    EXPECT_EQ(error_of([&] { engine.upload(name, add_code); }), ErrorCode::invalid_name) << name;
    EXPECT_EQ(error_of([&] { engine.invoke(name, json::array()); }), ErrorCode::invalid_name) << name;
    EXPECT_EQ(error_of([&] { engine.remove(name); }), ErrorCode::invalid_name) << name;
    EXPECT_EQ(error_of([&] { engine.logs(name); }), ErrorCode::invalid_name) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "x"));
  EXPECT_FALSE(std::filesystem::exists(dir.path().parent_path() / "x"));
}

TEST_F(EngineTest, ExceptionsBecomeErrorRecords) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("div", "def main(a, b):\n    return a / b\n");
  auto record = record_of(engine.invoke("div", json::array({1, 0})));
  EXPECT_EQ(record["status"], "error");
  EXPECT_EQ(record["error_type"], "ZeroDivisionError");
  EXPECT_EQ(record["error"], "division by zero");
  EXPECT_NE(record["traceback"].get<std::string>().find("return a / b"), std::string::npos);
  EXPECT_FALSE(record.contains("result"));

  record = record_of(engine.invoke("div", json::array({1})));  // wrong arity is the function's TypeError
  EXPECT_EQ(record["error_type"], "TypeError");

  engine.upload("odd", "class Custom(Exception):\n    pass\n\ndef main(kind):\n"
                       "    if kind == 'set':\n        return {1}\n"
                       "    if kind == 'exit':\n        raise SystemExit(3)\n"
                       "    raise Custom('mine')\n");
  record = record_of(engine.invoke("odd", json::array({"set"})));
  EXPECT_EQ(record["error_type"], "ResultNotSerializable");
  EXPECT_EQ(record["error"], "result is not JSON-serializable: object of type 'set'");
  EXPECT_EQ(record_of(engine.invoke("odd", json::array({"exit"})))["error_type"], "SystemExit");
  EXPECT_EQ(record_of(engine.invoke("odd", json::array({"other"})))["error_type"], "Custom");

  InvokeRequest bad;
  bad.function = "div";
  bad.args = R"({"not": "a list"})";
  EXPECT_EQ(record_of(engine.invoke(bad))["error_type"], "InvalidArguments");
  EXPECT_EQ(record_of(engine.invoke("div", json::array({6, 3})))["result"], 2.0);  // still serving
}

TEST_F(EngineTest, BigIntegersPassThroughExactly) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("mul", "def main(a, b):\n    return a * b\n");
  InvokeRequest request;
  request.function = "mul";
  parse_invoke_body(R"({"args": [123456789012345678901234567890, 10]})", request);
  auto result = engine.invoke(request);
  EXPECT_NE(result.json.find(R"("result":1234567890123456789012345678900)"), std::string::npos) << result.json;
  EXPECT_NE(result.json.find(R"("args":[123456789012345678901234567890,10])"), std::string::npos);
}

TEST_F(EngineTest, CapturesEachCallsOutputEvenWhenCallsOverlap) {
  auto config = testing::test_config(dir.path());
  config.max_concurrency = 4;
  Engine engine(config);
  // time.sleep releases the GIL, so the four calls interleave their prints.
  engine.upload("talk", "import sys, time\n\ndef main(tag):\n    for i in range(5):\n"
                        "        print(tag, i)\n        sys.stderr.write(tag + '!\\n')\n        time.sleep(0.02)\n"
                        "    return tag\n");
  std::vector<std::future<InvocationResult>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::async(std::launch::async, [&engine, i] {
      return engine.invoke("talk", json::array({"t" + std::to_string(i)}));
    }));
  }
  for (int i = 0; i < 4; ++i) {
    auto record = record_of(calls[i].get());
    std::string tag = "t" + std::to_string(i);
    std::string expected;
    for (int line = 0; line < 5; ++line) expected += tag + " " + std::to_string(line) + "\n" + tag + "!\n";
    EXPECT_EQ(record["stdout"], expected);
  }
}

TEST_F(EngineTest, CapsOutput) {
  auto config = testing::test_config(dir.path());
  config.output_limit = 1000;
  Engine engine(config);
  engine.upload("loud", "def main():\n    for _ in range(100000):\n        print('x' * 100)\n    return 1\n");
  auto record = record_of(engine.invoke("loud", json::array()));
  EXPECT_EQ(record["result"], 1);
  auto output = record["stdout"].get<std::string>();
  EXPECT_LE(output.size(), 1100u);
  EXPECT_NE(output.find("[output truncated]"), std::string::npos);
}

TEST_F(EngineTest, TimeoutInterruptsPurePythonAndTheEngineKeepsServing) {
  auto config = testing::test_config(dir.path());
  config.timeout = std::chrono::milliseconds(300);
  Engine engine(config);
  engine.upload("spin", "def main():\n    while True:\n        pass\n");
  engine.upload("swallow", "def main():\n    while True:\n        try:\n            pass\n"
                           "        except Exception:\n            pass\n");
  engine.upload("calc", add_code);
  for (const char* name : {"spin", "swallow"}) {
    auto started = std::chrono::steady_clock::now();
    auto record = record_of(engine.invoke(name, json::array()));
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(record["status"], "error");
    EXPECT_EQ(record["error_type"], "Timeout");
    EXPECT_EQ(record["error"], "function exceeded its timeout of 0.3 s");
    EXPECT_LT(elapsed, std::chrono::seconds(2));
  }
  EXPECT_EQ(record_of(engine.invoke("calc", json::array({2, 3})))["result"], 5);
}

TEST_F(EngineTest, TimeoutAlsoStopsCallsOnExecutorThreads) {
  auto config = testing::test_config(dir.path());
  config.timeout = std::chrono::milliseconds(300);
  Engine engine(config);
  engine.upload("spin", "def main():\n    while True:\n        pass\n");
  std::promise<std::string> error_type;
  InvokeRequest request;
  request.function = "spin";
  engine.invoke_async(request, [&](Outcome<InvocationResult> outcome) {  // queued: runs on an executor thread
    error_type.set_value(outcome.ok() ? outcome.value().record.error_type : "refused");
  });
  auto answer = error_type.get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(3)), std::future_status::ready);
  EXPECT_EQ(answer.get(), "Timeout");
}

// A caller's deadline (InvokeRequest::timeout) stops the call sooner than the function's own timeout, under
// either isolation; a longer one changes nothing.
TEST_F(EngineTest, ARequestsTimeoutShorterThanTheFunctionsWins) {
  for (auto isolation : {Isolation::inprocess, Isolation::process}) {
    TempDir data;
    auto config = testing::test_config(data.path());
    config.isolation = isolation;
    config.timeout = std::chrono::seconds(20);
    Engine engine(config);
    // Busy in Python: in-process isolation cannot interrupt a sleep inside C.
    engine.upload("nap", "import time\ndef main(s):\n    end = time.time() + s\n    while time.time() < end:\n"
                         "        pass\n    return s\n");
    InvokeRequest request;
    request.function = "nap";
    request.args = "[10]";
    request.timeout = std::chrono::milliseconds(400);
    auto started = std::chrono::steady_clock::now();
    auto record = record_of(engine.invoke(request));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5)) << to_string(isolation);
    EXPECT_EQ(record["error_type"], "Timeout") << to_string(isolation);
    EXPECT_NE(record["error"].get<std::string>().find("0.4 s"), std::string::npos) << record["error"];
    request.args = "[0.05]";
    request.timeout = std::chrono::hours(1);
    EXPECT_EQ(record_of(engine.invoke(request))["result"], 0.05) << to_string(isolation);
  }
}

TEST_F(EngineTest, RefusesWithOverloadedBeyondTheQueue) {
  auto config = testing::test_config(dir.path());
  config.max_concurrency = 1;
  config.max_queue = 2;
  Engine engine(config);
  engine.upload("slow", "import time\n\ndef main():\n    time.sleep(0.3)\n    return 1\n");
  std::atomic<int> overloaded{0}, answered{0};
  std::mutex mutex;
  std::condition_variable all_done;
  int pending = 10;
  for (int i = 0; i < 10; ++i) {
    InvokeRequest request;
    request.function = "slow";
    engine.invoke_async(request, [&](Outcome<InvocationResult> outcome) {
      if (outcome.ok()) {
        ++answered;
      } else {
        EXPECT_EQ(outcome.error().code(), ErrorCode::overloaded);
        ++overloaded;
      }
      std::lock_guard lock(mutex);
      if (--pending == 0) all_done.notify_one();
    });
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(all_done.wait_for(lock, std::chrono::seconds(10), [&] { return pending == 0; }));
  EXPECT_EQ(answered.load(), 3);  // one running + two queued
  EXPECT_EQ(overloaded.load(), 7);
}

TEST_F(EngineTest, BlockedCallsDoNotHoldUpOthers) {
  auto config = testing::test_config(dir.path());
  config.max_concurrency = 4;
  Engine engine(config);
  engine.upload("nap", "import time\n\ndef main():\n    time.sleep(1)\n    return 1\n");
  engine.upload("calc", add_code);
  auto napping = std::async(std::launch::async, [&] { return engine.invoke("nap", json::array()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(record_of(engine.invoke("calc", json::array({1, 1})))["result"], 2);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(500));
  EXPECT_EQ(record_of(napping.get())["result"], 1);
}

TEST_F(EngineTest, RestartKeepsFunctionsAndLogs) {
  std::string id;
  {
    Engine engine(testing::test_config(dir.path()));
    engine.upload("calc", add_code, "# no real requirements\n\n");
    EXPECT_FALSE(engine.info("calc").has_requirements);
    id = record_of(engine.invoke("calc", json::array({1, 2})))["id"];
  }
  Engine engine(testing::test_config(dir.path()));
  ASSERT_EQ(engine.list().size(), 1u);
  auto logs = engine.logs("calc");
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(json::parse(logs[0])["id"], id);
  EXPECT_EQ(record_of(engine.invoke("calc", json::array({2, 2})))["result"], 4);
}

TEST_F(EngineTest, RestoresFilesFromTheDatabase) {
  {
    Engine engine(testing::test_config(dir.path()));
    engine.upload("calc", add_code);
  }
  std::filesystem::remove_all(dir.path() / "functions" / "calc");  // lost or damaged files
  Engine engine(testing::test_config(dir.path()));
  EXPECT_EQ(record_of(engine.invoke("calc", json::array({2, 5})))["result"], 7);
}

TEST_F(EngineTest, KeepsOnlyTheNewestRecordsPerFunction) {
  auto config = testing::test_config(dir.path());
  config.log_retention = 50;
  Engine engine(config);
  engine.upload("calc", add_code);
  for (int i = 0; i < 300; ++i) engine.invoke("calc", json::array({i, 0}));
  auto logs = engine.logs("calc", 0);
  EXPECT_GE(logs.size(), 50u);
  EXPECT_LE(logs.size(), 56u);  // trimmed every retention/10 records
  EXPECT_EQ(json::parse(logs.back())["result"], 299);
}

TEST_F(EngineTest, ReportsStatus) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("calc", add_code);
  engine.invoke("calc", json::array({1, 2}));
  auto status = engine.status();
  EXPECT_EQ(status.loaded_functions, 1u);
  EXPECT_EQ(status.invocations, 1u);
  EXPECT_GT(status.process_rss_mb, 1.0);
  EXPECT_GT(status.system_memory.total_mb, 100.0);
  json shape = status;
  for (const char* key : {"status", "uptime", "cpu_percent", "ram_percent", "loaded_functions", "cpu_usage_absolute",
                          "memory_usage_absolute", "system_memory_info", "timestamp"}) {
    EXPECT_TRUE(shape.contains(key)) << key;
  }
  EXPECT_TRUE(shape["cpu_usage_absolute"].contains("process_milicpu"));
  EXPECT_TRUE(shape["memory_usage_absolute"].contains("process_rss_mb"));
}

TEST_F(EngineTest, ShutdownFinishesInFlightCallsAndRefusesNewOnes) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("nap", "import time\n\ndef main():\n    time.sleep(0.3)\n    return 'done'\n");
  std::promise<std::string> answer;
  InvokeRequest request;
  request.function = "nap";
  engine.invoke_async(request, [&](Outcome<InvocationResult> outcome) {
    answer.set_value(outcome.ok() ? outcome.value().record.result : "refused");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  engine.shutdown();
  EXPECT_EQ(answer.get_future().get(), "\"done\"");
  EXPECT_EQ(error_of([&] { engine.invoke("nap", json::array()); }), ErrorCode::shutting_down);
}

TEST_F(EngineTest, AnUnchangedUploadKeepsItsVersion) {
  Engine engine(testing::test_config(dir.path()));
  auto first = engine.upload("calc", add_code);
  auto again = engine.upload("calc", add_code);
  EXPECT_EQ(again.version, first.version);
  EXPECT_EQ(again.updated_at, first.updated_at);
  // Blank and comment lines are no requirements: still the same function.
  EXPECT_EQ(engine.upload("calc", add_code, "\n# nothing\n").version, first.version);
  auto changed = engine.upload("calc", "def main(a, b):\n    return a - b\n");
  EXPECT_EQ(changed.version, first.version + 1);
  EXPECT_EQ(record_of(engine.invoke("calc", json::array({5, 3})))["result"], 2);
  EXPECT_EQ(engine.upload("calc", add_code).version, first.version + 2);  // back to the first code: a change
}

TEST_F(EngineTest, InvocationStateFollowsAnAsyncCall) {
  Engine engine(testing::test_config(dir.path()));
  engine.upload("nap", "import time\n\ndef main():\n    time.sleep(0.3)\n    return 'done'\n");
  std::promise<std::string> committed;
  InvokeRequest request;
  request.function = "nap";
  auto id = engine.invoke_async(request, [&](Outcome<InvocationResult> outcome) {
    committed.set_value(outcome.ok() ? outcome.value().record.id : "refused");
  });
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(engine.invocation_state(id), Engine::InvocationState::running);
  EXPECT_FALSE(engine.record(id));
  EXPECT_EQ(committed.get_future().get(), id);
  EXPECT_EQ(engine.invocation_state(id), Engine::InvocationState::committed);
  EXPECT_TRUE(engine.record(id));
  EXPECT_EQ(engine.invocation_state("00000000-0000-4000-8000-000000000000"), Engine::InvocationState::unknown);
  // A synchronous call is committed by the time it returns.
  auto sync = engine.invoke("nap", json::array());
  EXPECT_EQ(engine.invocation_state(sync.record.id), Engine::InvocationState::committed);
}

}  // namespace
}  // namespace faas

namespace faas {
namespace {

// The registry's poll (for uploads by other processes) reads the database while uploads go on here: a function
// uploaded meanwhile must neither vanish from the table nor be retired.
TEST(EngineRegistry, UploadsDuringTheRegistryPollAreNeverLost) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  config.registry_poll = std::chrono::milliseconds(1);
  Engine engine(config);
  for (int i = 0; i < 300; ++i) {
    auto name = "f" + std::to_string(i);
    engine.upload(name, "def main():\n    return " + std::to_string(i) + "\n");
    auto result = engine.invoke(name, nlohmann::json::array());
    ASSERT_EQ(result.record.result, std::to_string(i)) << name;
  }
}

}  // namespace
}  // namespace faas
