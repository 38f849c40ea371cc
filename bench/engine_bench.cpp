// Engine throughput and latency beside a bare CPython call of the same function, in one run.
//
//   BM_BareCPythonCall            main(a, b) called from C++ with the GIL held: the floor
//   BM_InvokeSync                 one caller, invoke() after invoke(): latency (p50/p99 counters)
//   BM_InvokeAsync/256            invoke_async() with 256 in flight: throughput (items_per_second)
//   BM_InvokeAsyncPrefilled/256   the same with 100,000 records already in the store
// Every engine invocation is logged (its record committed) before it counts as done.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <Python.h>

#include <nlohmann/json.hpp>

#include "faas/engine.hpp"

namespace {

constexpr const char* add_code = "def main(a, b):\n    return a + b\n";

std::filesystem::path fresh_dir(const char* tag) {
  auto dir = std::filesystem::temp_directory_path() / (std::string("faas-bench-") + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

std::unique_ptr<faas::Engine> make_engine(const char* tag) {
  faas::EngineConfig config;
  config.data_dir = fresh_dir(tag);
  config.log_retention = 0;  // keep every record: the prefilled run needs them all
  auto engine = std::make_unique<faas::Engine>(config);
  engine->upload("add", add_code);
  return engine;
}

// Keeps `window` invocations in flight.
class Window {
 public:
  explicit Window(std::size_t window) : window_(window) {}
  void acquire() {
    std::unique_lock lock(mutex_);
    free_.wait(lock, [&] { return in_flight_ < window_; });
    ++in_flight_;
  }
  void release(bool ok) {
    std::lock_guard lock(mutex_);
    --in_flight_;
    failures_ += !ok;
    free_.notify_one();
  }
  void drain() {
    std::unique_lock lock(mutex_);
    free_.wait(lock, [&] { return in_flight_ == 0; });
  }
  std::size_t failures() const { return failures_; }

 private:
  std::size_t window_;
  std::mutex mutex_;
  std::condition_variable free_;
  std::size_t in_flight_ = 0;
  std::size_t failures_ = 0;
};

void run_async(benchmark::State& state, faas::Engine& engine) {
  Window window(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    window.acquire();
    faas::InvokeRequest request;
    request.function = "add";
    request.args = "[10,20]";
    engine.invoke_async(std::move(request), [&window](faas::Outcome<faas::InvocationResult> outcome) {
      window.release(outcome.ok() && outcome.value().record.ok());
    });
  }
  window.drain();
  if (window.failures() != 0) state.SkipWithError("some invocations failed");
  state.SetItemsProcessed(state.iterations());
}

void BM_BareCPythonCall(benchmark::State& state) {
  static auto engine = make_engine("bare");  // initialises the interpreter the same way
  PyGILState_STATE gil = PyGILState_Ensure();
  PyObject* globals = PyDict_New();
  PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
  PyObject* ran = PyRun_String(add_code, Py_file_input, globals, globals);
  Py_XDECREF(ran);
  PyObject* main = PyDict_GetItemString(globals, "main");
  PyObject* args = Py_BuildValue("(ii)", 10, 20);
  for (auto _ : state) {
    PyObject* result = PyObject_Call(main, args, nullptr);
    benchmark::DoNotOptimize(PyLong_AsLong(result));
    Py_DECREF(result);
  }
  Py_DECREF(args);
  Py_DECREF(globals);
  PyGILState_Release(gil);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BareCPythonCall)->UseRealTime();

void BM_InvokeSync(benchmark::State& state) {
  static auto engine = make_engine("sync");
  std::vector<double> micros;
  micros.reserve(1 << 20);
  for (auto _ : state) {
    faas::InvokeRequest request;
    request.function = "add";
    request.args = "[10,20]";
    auto started = std::chrono::steady_clock::now();
    auto result = engine->invoke(std::move(request));
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
    benchmark::DoNotOptimize(result.json.data());
  }
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[micros.size() * 99 / 100];
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InvokeSync)->UseRealTime()->MinTime(2.0);

void BM_InvokeAsync(benchmark::State& state) {
  static auto engine = make_engine("async");
  run_async(state, *engine);
}
BENCHMARK(BM_InvokeAsync)->Arg(256)->UseRealTime()->MinTime(2.0);

void BM_InvokeAsyncPrefilled(benchmark::State& state) {
  static auto engine = [] {
    auto made = make_engine("prefilled");
    Window window(256);
    for (int i = 0; i < 100000; ++i) {
      window.acquire();
      faas::InvokeRequest request;
      request.function = "add";
      request.args = "[1,2]";
      made->invoke_async(std::move(request), [&window](faas::Outcome<faas::InvocationResult> outcome) {
        window.release(outcome.ok());
      });
    }
    window.drain();
    return made;
  }();
  run_async(state, *engine);
}
BENCHMARK(BM_InvokeAsyncPrefilled)->Arg(256)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
