// What process isolation costs: the same trivial function under inprocess and process, in one run.
//
//   BM_Sync/<isolation>              one caller, invoke() after invoke(): p50/p99 latency (counters, µs)
//   BM_Async64/<isolation>           invoke_async() with 64 in flight: throughput (items_per_second)
//   BM_UploadToFirstAnswer/<isolation>  upload of a new function (no requirements), then its first invoke()
//   BM_FreshWorker/<isolation>       a settings change (its workers retire), then invoke(): the call waits for
//                                    a worker started from nothing (no spare on either side), so the two process
//                                    columns differ by what the sandbox adds to a worker's start
//   BM_StreamFirstChunk/<isolation>  a generator that yields, works 2 ms, yields again: p50 of the time to its
//                                    first chunk (first_us) against the whole call's (whole_us)
//   BM_ProcessStart/<confined>       true(1) started (until it execs), plainly (0) or in a worker's sandbox (1):
//                                    what the sandbox adds to any process start, without Python's own noise
// <isolation> is 0 for inprocess, 1 for process (sandboxed workers, the default) and 2 for process with
// --no-sandbox. Every invocation's record is committed before it counts.
// Figures and how to read them: docs/performance.md.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "runtime/sandbox.hpp"
#include "util/confinement.hpp"

namespace {

constexpr const char* add_code = "def main(a, b):\n    return a + b\n";

struct Setup {
  faas::Isolation isolation;
  bool sandbox;
  unsigned spares = 1;
};

Setup isolation_of(const benchmark::State& state) {
  return {state.range(0) == 0 ? faas::Isolation::inprocess : faas::Isolation::process, state.range(0) != 2};
}

std::unique_ptr<faas::Engine> make_engine(Setup setup, const std::string& tag) {
  auto isolation = setup.isolation;
  faas::EngineConfig config;
  config.workers.sandbox = setup.sandbox;
  config.workers.spares = setup.spares;
  config.data_dir = std::filesystem::temp_directory_path() /
                    ("faas-isolation-bench-" + tag + "-" + std::string(faas::to_string(isolation)) + (setup.sandbox ? "" : "-bare") + "-" +
                     std::to_string(::getpid()));
  std::filesystem::remove_all(config.data_dir);
  config.isolation = isolation;
  auto engine = std::make_unique<faas::Engine>(config);
  engine->upload("add", add_code);
  return engine;
}

faas::InvokeRequest add_request() {
  faas::InvokeRequest request;
  request.function = "add";
  request.args = "[10,20]";
  return request;
}

void report_percentiles(benchmark::State& state, std::vector<double>& micros) {
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[micros.size() * 99 / 100];
}

void BM_StreamFirstChunk(benchmark::State& state) {
  auto engine = make_engine(isolation_of(state), "stream");
  engine->upload("steps", "import time\ndef main():\n    yield 1\n    time.sleep(0.002)\n    yield 2\n");
  std::vector<double> first, whole;
  std::mutex mutex;
  std::condition_variable finished;
  for (auto _ : state) {
    faas::InvokeRequest request;
    request.function = "steps";
    auto started = std::chrono::steady_clock::now();
    auto since = [started] { return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count(); };
    bool seen = false, done = false;
    request.on_chunk = [&](std::string_view) {
      std::lock_guard lock(mutex);
      if (!seen) first.push_back(since());
      seen = true;
    };
    engine->invoke_async(std::move(request), [&](faas::Outcome<faas::InvocationResult> outcome) {
      std::lock_guard lock(mutex);
      if (!outcome.ok() || outcome.value().record.chunks != 2) state.SkipWithError("the stream failed");
      whole.push_back(since());
      done = true;
      finished.notify_one();
    });
    std::unique_lock lock(mutex);
    finished.wait(lock, [&] { return done; });
  }
  std::sort(first.begin(), first.end());
  std::sort(whole.begin(), whole.end());
  state.counters["first_us"] = first.empty() ? 0 : first[first.size() / 2];
  state.counters["whole_us"] = whole.empty() ? 0 : whole[whole.size() / 2];
}
BENCHMARK(BM_StreamFirstChunk)->Arg(0)->Arg(1)->UseRealTime()->MinTime(2.0);

void BM_Sync(benchmark::State& state) {
  auto engine = make_engine(isolation_of(state), "sync");
  engine->invoke(add_request());  // warm
  std::vector<double> micros;
  micros.reserve(1 << 20);
  for (auto _ : state) {
    auto started = std::chrono::steady_clock::now();
    auto result = engine->invoke(add_request());
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
    if (!result.record.ok()) state.SkipWithError("an invocation failed");
  }
  report_percentiles(state, micros);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sync)->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->MinTime(2.0);

void BM_Async64(benchmark::State& state) {
  auto engine = make_engine(isolation_of(state), "async");
  std::mutex mutex;
  std::condition_variable free;
  std::size_t in_flight = 0, failures = 0;
  for (auto _ : state) {
    {
      std::unique_lock lock(mutex);
      free.wait(lock, [&] { return in_flight < 64; });
      ++in_flight;
    }
    engine->invoke_async(add_request(), [&](faas::Outcome<faas::InvocationResult> outcome) {
      std::lock_guard lock(mutex);
      --in_flight;
      failures += !(outcome.ok() && outcome.value().record.ok());
      free.notify_one();
    });
  }
  std::unique_lock lock(mutex);
  free.wait(lock, [&] { return in_flight == 0; });
  if (failures != 0) state.SkipWithError("some invocations failed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Async64)->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->MinTime(2.0);

void BM_UploadToFirstAnswer(benchmark::State& state) {
  auto engine = make_engine(isolation_of(state), "upload");
  std::vector<double> micros;
  int serial = 0;
  for (auto _ : state) {
    std::string name = "fn" + std::to_string(serial++);
    auto started = std::chrono::steady_clock::now();
    engine->upload(name, add_code);
    auto result = engine->invoke(name, nlohmann::json::array({1, 2}));
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
    if (!result.record.ok()) state.SkipWithError("an invocation failed");
    state.PauseTiming();
    engine->remove(name);  // its workers go; the spare is started again before the next upload
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    state.ResumeTiming();
  }
  report_percentiles(state, micros);
}
BENCHMARK(BM_UploadToFirstAnswer)->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Iterations(40);

void BM_FreshWorker(benchmark::State& state) {
  auto setup = isolation_of(state);
  setup.spares = 0;
  auto engine = make_engine(setup, "fresh");
  engine->invoke("add", nlohmann::json::array({1, 2}));  // the probe's worker (unsandboxed) is used up
  std::vector<double> micros;
  int serial = 0;
  for (auto _ : state) {
    auto started = std::chrono::steady_clock::now();
    engine->update_settings("add", nlohmann::json{{"timeout", 30 + serial++ % 2}});
    auto result = engine->invoke("add", nlohmann::json::array({1, 2}));
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
    if (!result.record.ok()) state.SkipWithError("an invocation failed");
    state.PauseTiming();
    std::this_thread::sleep_for(std::chrono::milliseconds(60));  // the retired worker is gone
    state.ResumeTiming();
  }
  report_percentiles(state, micros);
}
BENCHMARK(BM_FreshWorker)->Arg(1)->Arg(2)->UseRealTime()->Iterations(40);

void BM_ProcessStart(benchmark::State& state) {
  const bool confined = state.range(0) == 1;
  faas::WorkerConfig config;
  std::vector<std::string> argv{"/usr/bin/true"};
  std::vector<std::string> env{"PATH=/usr/bin:/bin"};
  std::vector<double> micros;
  for (auto _ : state) {
    auto started = std::chrono::steady_clock::now();
    pid_t pid = -1;
    if (confined) {
      auto confinement = faas::runtime::worker_confinement(config, argv[0], nullptr);
      pid = faas::spawn_confined(confinement, argv, env, {{0, -1}, {1, -1}});
    } else {
      faas::SpawnActions actions;
      actions.open(0, "/dev/null", O_RDONLY).open(1, "/dev/null", O_WRONLY);
      pid = faas::spawn_in_own_group(argv, env, actions);
    }
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
    state.PauseTiming();  // a namespace's teardown is not on the way of a start
    int status = 0;
    ::waitpid(pid, &status, 0);
    state.ResumeTiming();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("/bin/true failed");
  }
  report_percentiles(state, micros);
}
BENCHMARK(BM_ProcessStart)->Arg(0)->Arg(1)->UseRealTime()->Iterations(400);

}  // namespace

BENCHMARK_MAIN();
