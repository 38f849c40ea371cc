// Process isolation through the engine: misbehaving functions are contained in their workers, each gets its
// record, and everything else keeps being served.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <chrono>
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
      // AddressSanitizer catches the SIGSEGV itself and aborts (abort_on_error=1).
      {"segfaults", "import ctypes\ndef main():\n    ctypes.string_at(0)\n", "WorkerCrashed",
       under_asan ? "was killed by signal 6" : "was killed by signal 11"},
      {"spins", "def main():\n    while True:\n        pass\n", "Timeout", "timeout of 1 s"},
      {"sleeps_in_c", "import time\ndef main():\n    time.sleep(1e9)\n", "Timeout", "its worker was killed"},
      {"prints_100mb", "def main():\n    line = 'x' * 1023\n    for _ in range(100 * 1024):\n        print(line)\n"
                       "    return 'done'\n", nullptr, ""},
  };
  if (!under_asan) {
    cases.push_back({"allocates", "def main():\n    hoard = []\n    while True:\n        hoard.append(bytearray(10**7))\n",
                     "MemoryLimit", "memory limit of 512 MB"});
  }
  for (const auto& c : cases) engine.upload(c.name, c.code);

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

TEST_F(ProcessIsolationTest, WorkersGetAMinimalEnvironmentTheirFolderAndOnlyTheStandardLibrary) {
  ::setenv("FAAS_HTTP_PASSWORD", "do-not-leak", 1);
  Engine engine(process_config(dir.path()));
  engine.upload("probe",
                "import os, sys\n"
                "def main():\n"
                "    return [os.environ.get('FAAS_HTTP_PASSWORD'), os.getcwd(), os.getpgid(0) == os.getpid(),\n"
                "            [p for p in sys.path if 'packages' in p], sorted(os.listdir('/proc/self/fd'))]\n");
  ::unsetenv("FAAS_HTTP_PASSWORD");
  auto result = call(engine, "probe")["result"];
  EXPECT_TRUE(result[0].is_null());
  EXPECT_EQ(result[1], std::filesystem::canonical(dir.path() / "functions" / "probe").string());
  EXPECT_EQ(result[2], true) << "its own process group";
  EXPECT_EQ(result[3], json::array()) << "no site-packages of the system";
  // 0, 1, 2, the engine's socket, and the descriptor listdir itself opened.
  EXPECT_EQ(result[4].size(), 5u) << result[4].dump();
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

TEST_F(ProcessIsolationTest, TheSandboxTakesTheNetworkAway) {
  auto config = process_config(dir.path());
  config.workers.sandbox = true;
  std::unique_ptr<Engine> engine;
  try {
    engine = std::make_unique<Engine>(config);
  } catch (const Error& e) {
    GTEST_SKIP() << "this machine refuses unprivileged namespaces: " << e.what();
  }
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

}  // namespace
}  // namespace faas
