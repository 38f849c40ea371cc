// PythonRunner, the one path that imports a function and runs a call (in-process threads and faas-worker alike).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "faas/error.hpp"
#include "runtime/python_runner.hpp"
#include "test_support.hpp"

namespace faas::runtime {
namespace {

using testing::TempDir;

class PythonRunnerTest : public ::testing::Test {
 protected:
  PythonRunnerTest() : host(PythonHost::get("/usr/bin/python3")) {}

  FunctionSpec write_function(const std::string& name, const std::string& code, std::uint64_t version = 1) {
    auto folder = dir.path() / (name + "-v" + std::to_string(version));
    std::filesystem::create_directories(folder);
    std::ofstream(folder / "func.py") << code;
    FunctionSpec spec;
    spec.name = name;
    spec.version = version;
    spec.revision = version;
    spec.source = folder / "func.py";
    return spec;
  }

  Invocation run(PythonRunner& runner, const FunctionSpec& spec, std::string args = "[]", std::string kwargs = "") {
    Invocation record;
    record.args = std::move(args);
    record.kwargs = std::move(kwargs);
    GilLock gil;
    runner.run(spec, record, slot);
    return record;
  }

  TempDir dir;
  PythonHost& host;
  CallSlot slot;
};

TEST_F(PythonRunnerTest, RunsACallAndFillsTheRecord) {
  PythonRunner runner(host, RunnerLimits{});
  auto spec = write_function("add", "def main(a, b, scale=1):\n    print('adding')\n    return (a + b) * scale\n");
  auto record = run(runner, spec, "[10, 20]", R"({"scale": 2})");
  ASSERT_TRUE(record.ok()) << record.error << record.traceback;
  EXPECT_EQ(record.result, "60");
  EXPECT_EQ(record.output, "adding\n");
  EXPECT_GE(record.time_end, record.time_start);
  EXPECT_EQ(runner.loaded_count(), 1u);
  EXPECT_FALSE(slot.busy());
}

TEST_F(PythonRunnerTest, FailuresBecomeTheRecordsError) {
  PythonRunner runner(host, RunnerLimits{});
  auto spec = write_function("div", "def main(a, b):\n    return a / b\n");
  auto raised = run(runner, spec, "[1, 0]");
  EXPECT_EQ(raised.error_type, "ZeroDivisionError");
  EXPECT_EQ(raised.error, "division by zero");
  EXPECT_NE(raised.traceback.find("return a / b"), std::string::npos);
  EXPECT_EQ(run(runner, spec, "{}").error_type, "InvalidArguments");
  EXPECT_EQ(run(runner, spec, "[1, 2]", "[]").error_type, "InvalidArguments");
  auto unserializable = write_function("obj", "def main():\n    return object()\n");
  EXPECT_EQ(run(runner, unserializable).error_type, "ResultNotSerializable");
  auto broken = write_function("broken", "def main(:\n");
  auto record = run(runner, broken);
  EXPECT_EQ(record.error_type, "LoadError");
  EXPECT_NE(record.error.find("SyntaxError"), std::string::npos);
}

TEST_F(PythonRunnerTest, LoadThrowsBuildFailedAndTheOldVersionKeepsServing) {
  PythonRunner runner(host, RunnerLimits{});
  auto v1 = write_function("f", "def main():\n    return 'v1'\n", 1);
  {
    GilLock gil;
    runner.load(v1, slot);
  }
  auto v2 = write_function("f", "def main(:\n", 2);
  try {
    GilLock gil;
    runner.load(v2, slot);
    ADD_FAILURE() << "a broken version loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::build_failed);
    EXPECT_NE(std::string(e.what()).find("SyntaxError"), std::string::npos);
  }
  EXPECT_EQ(run(runner, v1).result, "\"v1\"");
  auto no_main = write_function("g", "x = 1\n");
  GilLock gil;
  EXPECT_THROW(runner.load(no_main, slot), Error);
  EXPECT_EQ(runner.loaded_count(), 1u);
}

TEST_F(PythonRunnerTest, TheWatchdogStopsALateCallAndTheRunnerGoesOn) {
  PythonRunner runner(host, RunnerLimits{});
  auto spin = write_function("spin", "def main(n):\n    while n:\n        pass\n    return 'done'\n");
  spin.timeout = std::chrono::milliseconds(200);  // the function's own, not the server's
  SlotWatchdog watchdog(host, slot, spin.timeout);
  auto started = std::chrono::steady_clock::now();
  auto late = run(runner, spin, "[1]");
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(late.error_type, "Timeout");
  EXPECT_NE(late.error.find("timeout"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_EQ(run(runner, spin, "[0]").result, "\"done\"");  // no Timeout left over for the next call
}

TEST_F(PythonRunnerTest, ResultAndMemoryLimitsNameTheirErrors) {
  RunnerLimits limits;
  limits.result_limit = 16;
  limits.memory_limited = true;
  PythonRunner runner(host, limits);
  auto big = write_function("big", "def main(n):\n    return 'x' * n\n");
  EXPECT_TRUE(run(runner, big, "[4]").ok());
  auto too_big = run(runner, big, "[100]");
  EXPECT_EQ(too_big.error_type, "ResultTooLarge");
  EXPECT_TRUE(too_big.result.empty());
  auto oom = write_function("oom", "def main():\n    raise MemoryError()\n");
  oom.memory_limit_mb = 64;
  auto record = run(runner, oom);
  EXPECT_EQ(record.error_type, "MemoryLimit");
  EXPECT_NE(record.error.find("64 MB"), std::string::npos);
}

}  // namespace
}  // namespace faas::runtime
