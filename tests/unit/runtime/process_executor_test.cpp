// Process isolation through the engine: misbehaving functions are contained in their workers, each gets its
// record, and everything else keeps being served.
#include <gtest/gtest.h>
#include <sstream>
#include <set>
#include <map>

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include <Python.h>
#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

using nlohmann::json;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_asan = true;  // the worker then sets no RLIMIT_AS (see faas-worker)
#else
constexpr bool under_asan = false;
#endif

EngineConfig process_config(const std::filesystem::path& dir) {
  auto config = testing::test_config(dir);
  config.isolation = Isolation::process;
  config.timeout = std::chrono::seconds(1);
  config.workers.memory_limit_mb = 512;
  return config;
}

json call(Engine& engine, const std::string& name, json args = json::array()) {
  return json::parse(engine.invoke(name, args).json);
}

// Invokes `calc` from another thread until stopped, counting answers and anything that went wrong.
class BackgroundStream {
 public:
  explicit BackgroundStream(Engine& engine) : thread_([this, &engine] {
    for (int i = 0; !stop_; ++i) {
      try {
        auto record = call(engine, "calc", json::array({i, 1}));
        if (record["status"] == "success" && record["result"] == i + 1) {
          ++answered_;
        } else {
          ++wrong_;
        }
      } catch (const Error&) {
        ++wrong_;
      }
    }
  }) {}
  ~BackgroundStream() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int answered() const { return answered_; }
  int wrong() const { return wrong_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0}, wrong_{0};
  std::thread thread_;
};

class ProcessIsolationTest : public ::testing::Test {
 protected:
  TempDir dir;
};

TEST_F(ProcessIsolationTest, EachMisbehaviourGetsItsRecordWhileAnotherFunctionKeepsAnswering) {
  Engine engine(process_config(dir.path()));
  engine.upload("calc", "def main(a, b):\n    return a + b\n");
  struct Case {
    const char* name;
    const char* code;
    const char* error_type;  // nullptr: succeeds
    const char* error_part;
  };
  std::vector<Case> cases = {
      {"exits", "import os\ndef main():\n    os._exit(1)\n", "WorkerCrashed", "exited with code 1"},
      // AddressSanitizer catches the SIGSEGV itself and aborts (abort_on_error=1); the worker is the first process
      // of its PID namespace, so the kernel ignores the SIGABRT it sends itself and ASan exits with code 1.
      {"segfaults", "import ctypes\ndef main():\n    ctypes.string_at(0)\n", "WorkerCrashed",
       under_asan ? "exited with code 1" : "was killed by signal 11"},
      {"spins", "def main():\n    while True:\n        pass\n", "Timeout", "timeout of 1 s"},
      {"sleeps_in_c", "import time\ndef main():\n    time.sleep(1e9)\n", "Timeout", "its worker was killed"},
      {"prints_100mb", "def main():\n    line = 'x' * 1023\n    for _ in range(100 * 1024):\n        print(line)\n"
                       "    return 'done'\n", nullptr, ""},
  };
  if (!under_asan) {
    cases.push_back({"allocates", "def main():\n    hoard = []\n    while True:\n        hoard.append(bytearray(10**7))\n",
                     "MemoryLimit", "memory limit of 160 MB"});
  }
  for (const auto& c : cases) engine.upload(c.name, c.code);
  // Its own limit, below the server's 512 MB: reached in a fraction of the 1 s timeout even on a busy machine.
  if (!under_asan) engine.update_settings("allocates", json{{"memory_mb", 160}});

  BackgroundStream stream(engine);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto started = Clock::now();
    auto record = call(engine, c.name);
    auto elapsed = Clock::now() - started;
    EXPECT_LT(elapsed, std::chrono::milliseconds(2500)) << "the timeout is 1 s";
    if (c.error_type == nullptr) {
      EXPECT_EQ(record["status"], "success") << record.dump();
      EXPECT_LE(record["stdout"].get<std::string>().size(), 64u * 1024 + 64) << "output is capped";
      continue;
    }
    EXPECT_EQ(record["status"], "error");
    EXPECT_EQ(record["error_type"], c.error_type) << record.dump();
    EXPECT_NE(record["error"].get<std::string>().find(c.error_part), std::string::npos) << record.dump();
    // The function's worker was replaced: it runs again, with the same outcome.
    if (std::string(c.error_type) == "WorkerCrashed") {
      EXPECT_EQ(call(engine, c.name)["error_type"], c.error_type);
    }
  }
  stream.finish();
  EXPECT_GT(stream.answered(), 0);
  EXPECT_EQ(stream.wrong(), 0);
  EXPECT_EQ(call(engine, "calc", json::array({2, 3}))["result"], 5);
}

TEST_F(ProcessIsolationTest, TwoFunctionsSeeTheirOwnVersionOfOnePackage) {
  auto wheels = dir.path() / "wheels";
  testing::make_wheel(wheels, "sharedpkg", "1.0");
  testing::make_wheel(wheels, "sharedpkg", "2.0");
  testing::use_offline_wheels(wheels);
  Engine engine(process_config(dir.path() / "data"));
  const char* code = "import sharedpkg\ndef main():\n    return sharedpkg.VERSION\n";
  engine.upload("old", code, "sharedpkg==1.0\n");
  engine.upload("new", code, "sharedpkg==2.0\n");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(call(engine, "old")["result"], "1.0");
    EXPECT_EQ(call(engine, "new")["result"], "2.0");
  }
}

TEST_F(ProcessIsolationTest, TwoHundredConcurrentInvocationsAcrossFourFunctionsAreAllRecorded) {
  auto config = process_config(dir.path());
  config.timeout = std::chrono::seconds(10);
  Engine engine(config);
  for (int f = 0; f < 4; ++f) {
    engine.upload("f" + std::to_string(f), "import time\ndef main(i):\n    time.sleep(0.002)\n    return i * " +
                                               std::to_string(f + 1) + "\n");
  }
  std::mutex mutex;
  std::vector<json> records;
  std::promise<void> all_done;
  std::atomic<int> left{200};
  for (int i = 0; i < 200; ++i) {
    InvokeRequest request;
    request.function = "f" + std::to_string(i % 4);
    request.args = "[" + std::to_string(i) + "]";
    engine.invoke_async(std::move(request), [&](Outcome<InvocationResult> outcome) {
      {
        std::lock_guard lock(mutex);
        records.push_back(outcome.ok() ? json::parse(outcome.value().json) : json{{"refused", outcome.error().what()}});
      }
      if (--left == 0) all_done.set_value();
    });
  }
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  for (const auto& record : records) {
    ASSERT_EQ(record.value("status", ""), "success") << record.dump();
    int i = record["args"][0];
    EXPECT_EQ(record["result"], i * (i % 4 + 1));
  }
  for (int f = 0; f < 4; ++f) EXPECT_EQ(engine.logs("f" + std::to_string(f), 0).size(), 50u);
}

TEST_F(ProcessIsolationTest, ReuploadSwapsWorkersWithoutFailingCallsInFlight) {
  Engine engine(process_config(dir.path()));
  engine.upload("calc", "def main(a, b):\n    return a + b\n");
  BackgroundStream stream(engine);
  for (int version = 2; version <= 4; ++version) {
    engine.upload("calc", "def main(a, b):\n    return a + b  # v" + std::to_string(version) + "\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stream.finish();
  EXPECT_GT(stream.answered(), 0);
  EXPECT_EQ(stream.wrong(), 0);
  EXPECT_EQ(engine.info("calc").version, 4u);
}

TEST_F(ProcessIsolationTest, RollbacksDuringAStreamOfCallsFailNone) {
  Engine engine(process_config(dir.path()));
  engine.upload("calc", "def main(a, b):\n    return a + b\n");
  engine.upload("calc", "def main(a, b):\n    return a + b  # v2\n");
  BackgroundStream stream(engine);
  for (std::uint64_t version : {1, 2, 1}) {
    engine.rollback("calc", version);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stream.finish();
  EXPECT_GT(stream.answered(), 0);
  EXPECT_EQ(stream.wrong(), 0);
  EXPECT_EQ(engine.info("calc").version, 1u);
}

TEST_F(ProcessIsolationTest, CallsQueuedWhenTheSettingsChangeRunUnderTheNewOnes) {
  Engine engine(process_config(dir.path()));
  engine.upload("nap", "import os, time\ndef main(s):\n    time.sleep(s)\n    return os.environ.get('MODE')\n",
                std::nullopt, json{{"max_workers", 1}});
  std::vector<std::promise<std::string>> results(6);
  for (std::size_t i = 0; i < results.size(); ++i) {
    InvokeRequest request;
    request.function = "nap";
    request.args = i == 0 ? "[0.5]" : "[0]";
    engine.invoke_async(std::move(request), [&result = results[i]](Outcome<InvocationResult> outcome) {
      result.set_value(outcome.ok() ? outcome.value().record.result : outcome.error().what());
    });
    // The first call keeps the one worker busy, so the others wait in the queue.
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  engine.update_settings("nap", json{{"env", {{"MODE", "new"}}}});  // no call comes after it
  std::vector<std::string> answers;
  for (auto& result : results) {
    auto future = result.get_future();
    ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "a queued call was stranded";
    answers.push_back(future.get());
  }
  EXPECT_EQ(answers.back(), "\"new\"");  // the calls still queued ran on a worker with the new settings
  EXPECT_EQ(answers.front(), "null");
}

TEST_F(ProcessIsolationTest, WorkersGetAMinimalEnvironmentTheirFolderAndOnlyTheStandardLibrary) {
  ::setenv("FAAS_HTTP_PASSWORD", "do-not-leak", 1);
  Engine engine(process_config(dir.path()));
  engine.upload("probe",
                "import os, sys\n"
                "def main():\n"
                "    return [os.environ.get('FAAS_HTTP_PASSWORD'), os.getcwd(),\n"
                "            sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),\n"
                "            [p for p in sys.path if 'packages' in p], sorted(os.listdir('/proc/self/fd'))]\n");
  ::unsetenv("FAAS_HTTP_PASSWORD");
  auto result = call(engine, "probe")["result"];
  EXPECT_TRUE(result[0].is_null());
  EXPECT_EQ(result[1], std::filesystem::canonical(dir.path() / "functions" / "probe").string());
  EXPECT_EQ(result[2], json::array({1})) << "its own PID namespace, of which it is the first process";
  EXPECT_EQ(result[3], json::array()) << "no site-packages of the system";
  // 0, 1 and 2 (the worker's output pipe), the engine's socket, the pipe's other end, /proc/self/stat (the worker
  // counts its threads after each call) and the descriptor listdir itself opened.
  EXPECT_EQ(result[4].size(), 7u) << result[4].dump();
}

TEST_F(ProcessIsolationTest, ShutdownLetsACallInFlightFinish) {
  Engine engine(process_config(dir.path()));
  engine.upload("nap", "import time\ndef main():\n    time.sleep(0.3)\n    return 'rested'\n");
  std::promise<std::string> result;
  InvokeRequest request;
  request.function = "nap";
  engine.invoke_async(std::move(request), [&](Outcome<InvocationResult> outcome) {
    result.set_value(outcome.ok() ? outcome.value().json : outcome.error().what());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  engine.shutdown();
  auto future = result.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(json::parse(future.get())["result"], "rested");
}

TEST_F(ProcessIsolationTest, WithNetworkNoneAFunctionHasOnlyLoopback) {
  auto config = process_config(dir.path());
  config.workers.network = FunctionNetwork::none;
  auto engine = std::make_unique<Engine>(config);
  engine->upload("net", "import socket\ndef main():\n    return [name for _, name in socket.if_nameindex()]\n");
  EXPECT_EQ(call(*engine, "net")["result"], json::array({"lo"}));
}

TEST_F(ProcessIsolationTest, ABrokenUploadKeepsTheOldVersionServing) {
  Engine engine(process_config(dir.path()));
  engine.upload("calc", "def main(a, b):\n    return a + b\n");
  try {
    engine.upload("calc", "import os\nos._exit(3)\n");
    FAIL() << "the upload should fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::build_failed);
    EXPECT_NE(std::string(e.what()).find("exited with code 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(call(engine, "calc", json::array({1, 2}))["result"], 3);
  EXPECT_THROW(engine.upload("calc", "def main(:\n"), Error);
  EXPECT_EQ(call(engine, "calc", json::array({1, 2}))["result"], 3);
}

TEST(ProcessIsolationServer, NeverStartsPythonItself) {
  if (Py_IsInitialized()) GTEST_SKIP() << "an earlier test in this process started Python (ctest runs each alone)";
  TempDir dir;
  Engine engine(process_config(dir.path()));
  engine.upload("calc", "def main(a, b):\n    return a + b\n");
  EXPECT_EQ(call(engine, "calc", json::array({1, 2}))["result"], 3);
  EXPECT_EQ(engine.status().loaded_functions, 1u);
  EXPECT_FALSE(Py_IsInitialized());  // the workers run Python; this process only talks to them
}

TEST(ProcessIsolationLimits, AHugeResultIsRefusedWithoutKillingTheWorker) {
  TempDir dir;
  auto config = process_config(dir.path());
  config.workers.memory_limit_mb = 1024;
  config.timeout = std::chrono::seconds(10);
  Engine engine(config);
  engine.upload("big", "import os\n\ndef main(n):\n    return os.getpid() if n == 0 else 'x' * n\n");
  auto pid = call(engine, "big", json::array({0}))["result"];
  auto record = call(engine, "big", json::array({500 * 1000 * 1000}));
  EXPECT_EQ(record["error_type"], "ResultTooLarge") << record.dump().substr(0, 300);
  EXPECT_EQ(call(engine, "big", json::array({0}))["result"], pid);  // the same worker goes on
}

bool is_zombie(long pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto state = line.find(") ");
  return state != std::string::npos && line[state + 2] == 'Z';
}

// Until the process has exited (a zombie, or reaped already) and its descriptors are closed: a killed process's
// main thread shows as a zombie while its other threads, which share its descriptors, may still be ending.
void wait_until_dead(long pid) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (::kill(static_cast<pid_t>(pid), 0) == 0 && !is_zombie(pid) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

TEST(ProcessIsolationWorkers, AWorkerKilledWhileIdleIsReplacedAndReaped) {
  TempDir dir;
  auto config = process_config(dir.path());
  config.workers.sandbox = false;  // so that os.getpid() is the pid this test can kill (the sandbox has its own)
  Engine engine(config);
  engine.upload("pid", "import os\n\ndef main():\n    return os.getpid()\n");
  long first = call(engine, "pid")["result"];
  ASSERT_EQ(::kill(static_cast<pid_t>(first), SIGKILL), 0);
  wait_until_dead(first);
  // The next call is answered by a fresh worker: the dead one never had it.
  auto record = call(engine, "pid");
  ASSERT_EQ(record["status"], "success") << record.dump();
  EXPECT_NE(record["result"].get<long>(), first);
  // And the dead one does not linger as a zombie.
  auto deadline = Clock::now() + std::chrono::seconds(3);
  while (::kill(static_cast<pid_t>(first), 0) == 0 && is_zombie(first) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(::kill(static_cast<pid_t>(first), 0) == 0 && is_zombie(first));
}

TEST(ProcessIsolationWorkers, AnIdleWorkerKilledBetweenAsyncCallsLosesNone) {
  TempDir dir;
  Engine engine(process_config(dir.path()));
  engine.upload("pid", "import os\n\ndef main():\n    return os.getpid()\n");
  long first = call(engine, "pid")["result"];
  ::kill(static_cast<pid_t>(first), SIGKILL);
  wait_until_dead(first);
  std::vector<std::future<std::string>> answers;
  for (int i = 0; i < 20; ++i) {
    auto promise = std::make_shared<std::promise<std::string>>();
    answers.push_back(promise->get_future());
    InvokeRequest request;
    request.function = "pid";
    engine.invoke_async(request, [promise](Outcome<InvocationResult> outcome) {
      promise->set_value(outcome.ok() ? (outcome.value().record.ok() ? "success" : outcome.value().json) : "refused");
    });
  }
  for (auto& answer : answers) EXPECT_EQ(answer.get(), "success");
}

TEST(ProcessIsolationWorkers, WhatAFunctionWritesToItsDescriptorsIsItsOutput) {
  TempDir dir;
  auto config = process_config(dir.path());
  config.output_limit = 1000;
  Engine engine(config);
  engine.upload("loud", "import os, sys\n\nos.write(2, b'at import\\n')\n\ndef main(n):\n"
                        "    print('through print')\n"
                        "    os.write(2, b'to fd 2\\n')\n"
                        "    os.write(1, b'x' * n)\n"
                        "    return n\n");
  auto record = call(engine, "loud", json::array({3}));
  ASSERT_EQ(record["status"], "success") << record.dump();
  EXPECT_EQ(record["stdout"], "through print\nto fd 2\nxxx");
  // 11 MB at once: the call is not held up, the output is capped, and nothing of it reaches this process.
  auto big = call(engine, "loud", json::array({11 * 1000 * 1000}));
  ASSERT_EQ(big["status"], "success") << big.dump().substr(0, 300);
  auto output = big["stdout"].get<std::string>();
  EXPECT_LT(output.size(), 1100u);
  EXPECT_NE(output.find("[output truncated]"), std::string::npos);
  EXPECT_EQ(call(engine, "loud", json::array({1}))["stdout"], "through print\nto fd 2\nx");
}

}  // namespace
}  // namespace faas

namespace faas {
namespace {

// The faas-worker processes among this process's descendants (other tests may run beside this one).
std::size_t my_workers() {
  std::map<long, long> parent_of;
  std::set<long> workers;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    char state = 0;
    long ppid = 0;
    rest >> state >> ppid;
    long pid = std::stol(name);
    parent_of[pid] = ppid;
    std::ifstream cmdline(entry.path() / "cmdline");
    std::string argv0;
    std::getline(cmdline, argv0, '\0');
    if (state != 'Z' && argv0.size() >= 11 && argv0.compare(argv0.size() - 11, 11, "faas-worker") == 0) {
      workers.insert(pid);
    }
  }
  std::size_t mine = 0;
  for (long pid : workers) {
    for (long up = parent_of[pid]; up > 1; up = parent_of.count(up) ? parent_of[up] : 0) {
      if (up == ::getpid()) {
        ++mine;
        break;
      }
    }
  }
  return mine;
}

TEST(ProcessIsolationBudget, ManyFunctionsShareTheWorkerBudget) {
  testing::TempDir dir;
  auto config = process_config(dir.path());
  config.workers.max_total = 3;
  Engine engine(config);
  std::size_t most = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 8; ++i) {
      auto name = "fn" + std::to_string(i);
      if (round == 0) engine.upload(name, "def main(a):\n    return a * " + std::to_string(i) + "\n");
      EXPECT_EQ(call(engine, name, json::array({2}))["result"], 2 * i) << name;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // retired workers take a moment to go
      most = std::max(most, my_workers());
    }
  }
  // The budget, and at most one more while an upload's worker imports its code.
  EXPECT_LE(most, 4u);
  EXPECT_GE(most, 1u);
}

}  // namespace
}  // namespace faas
