// The one place where a function's Python code is imported and one call of it runs: the in-process executor's
// threads and faas-worker both go through PythonRunner, so a record reads the same whichever isolation made it.
//
// GIL rules: every PythonRunner method needs the GIL. CallSlot::interrupt_if_late is for a watchdog thread and
// takes the GIL itself, only when a call is late.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "faas/invocation.hpp"
#include "runtime/function_spec.hpp"
#include "runtime/python_host.hpp"

namespace faas::runtime {

// The deadline of the call (or import) a thread is running, for a watchdog to enforce. One per thread that runs
// calls; a PythonRunner sets it around each call.
class CallSlot {
 public:
  // Watchdog side: raises the host's Timeout in the running call if it is past its deadline. Costs three atomic
  // loads unless it is late.
  void interrupt_if_late(PythonHost& host, std::int64_t now_ns);
  bool busy() const noexcept { return running_.load() != 0; }
  std::int64_t deadline_ns() const noexcept { return deadline_ns_.load(); }

  // Runner side, GIL held: a call starts (on this thread) / ends. end() says whether the watchdog interrupted it,
  // and drops a Timeout raised too late to land inside the call.
  void begin(std::chrono::milliseconds timeout);
  bool end();

 private:
  std::atomic<std::uint64_t> running_{0};    // serial of the call in progress; 0 between calls
  std::atomic<std::int64_t> deadline_ns_{0};  // steady clock
  std::atomic<bool> interrupted_{false};
  std::atomic<unsigned long> python_thread_id_{0};
};

std::int64_t steady_now_ns();

// A thread that enforces one slot's deadlines: it sleeps until the running call's deadline, and between calls
// wakes at most once per min(timeout, 1 s), so enforcement is never late by more than a few milliseconds and an
// idle process is not woken often. For faas-worker, which runs one call at a time.
class __attribute__((visibility("hidden"))) SlotWatchdog {
 public:
  SlotWatchdog(PythonHost& host, CallSlot& slot, std::chrono::milliseconds timeout);
  ~SlotWatchdog();
  SlotWatchdog(const SlotWatchdog&) = delete;
  SlotWatchdog& operator=(const SlotWatchdog&) = delete;

 private:
  void watch();

  PythonHost& host_;
  CallSlot& slot_;
  std::chrono::milliseconds idle_period_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Hidden below, like PythonHost and pybind11's own types, which they hold.

struct RunnerLimits {
  std::size_t output_limit = 64 * 1024;  // bytes of printed output (and of error texts) kept
  std::size_t result_limit = 0;          // bytes of a result's JSON; larger is "ResultTooLarge" (0 = no limit)
  bool memory_limited = false;  // the process runs under the function's memory_limit_mb: a MemoryError is
                                // named "MemoryLimit"
};

class __attribute__((visibility("hidden"))) PythonRunner {
 public:
  PythonRunner(PythonHost& host, RunnerLimits limits);

  // GIL. Imports `function` afresh and checks its main is callable; from then on calls of that name run it.
  // If it fails, the version loaded before (if any) stays. Throws Error(build_failed) with the traceback.
  void load(const FunctionSpec& function, CallSlot& slot);
  // GIL. Runs one call: record.args and record.kwargs (JSON text) in, the rest of the record out. Loads the
  // function first when this runner has no version of it as new as `function`. Never throws for what the
  // function does; its failures become the record's error.
  // A main that returns a generator (or any iterator) streams: each item goes to `on_chunk` as JSON text as soon as
  // it is yielded, and the record's result is the array of them (the first ones, within the output limit).
  // The call runs for at most `timeout` (the function's when zero).
  void run(const FunctionSpec& function, Invocation& record, CallSlot& slot, const ChunkSink& on_chunk = {},
           std::chrono::milliseconds timeout = {});
  // GIL. Forgets the loaded revision of `name` unless it is `keep_revision` (0 forgets it whatever it is).
  void retire(const std::string& name, std::uint64_t keep_revision);
  // GIL. Forgets every loaded function.
  void retire_all();

  std::size_t loaded_count() const noexcept { return loaded_count_.load(std::memory_order_relaxed); }
  PythonHost& host() noexcept { return host_; }

 private:
  struct Loaded {
    std::uint64_t revision = 0;
    std::uint64_t version = 0;
    std::string module_name;
    pybind11::object main;
  };

  // The function's main, importing it when needed; null with `error` set when it cannot be imported.
  const Loaded* find_main(const FunctionSpec& function, std::string& error);
  const Loaded* import_fresh(const FunctionSpec& function, std::string& error);
  // Converts the arguments and calls main: false (record failed) when the arguments do not convert; true when
  // main ran, with `result` set, or the record failed with the exception it raised.
  bool call_main(PyObject* main, Invocation& record, pybind11::object& result, const ChunkSink& on_chunk);
  // Drains an iterator `main` returned into record.result and `on_chunk`; false when it raised (the exception
  // set) or yielded what JSON cannot hold (the record failed).
  bool stream(PyObject* iterator, Invocation& record, const ChunkSink& on_chunk);
  void apply_limits(const FunctionSpec& function, Invocation& record) const;

  PythonHost& host_;
  RunnerLimits limits_;
  std::unordered_map<std::string, Loaded> loaded_;  // guarded by the GIL
  std::atomic<std::size_t> loaded_count_{0};
};

}  // namespace faas::runtime
