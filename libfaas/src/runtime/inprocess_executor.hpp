// Runs functions in this process's interpreter on a small pool of threads.
//
// GIL policy: handing the GIL from one thread to another costs ~10 µs per call on this hardware against ~0.3 µs
// for the call itself, so the thread that holds the GIL drains the queue back to back. A second thread joins only
// when calls stop completing (a function blocked in sleep or I/O, or a long one): a watchdog notices the missing
// progress and wakes a helper. The same watchdog enforces timeouts by raising Timeout in the running thread,
// which stops pure-Python code but not a call blocked inside C code (only process isolation can do that).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "runtime/executor.hpp"
#include "runtime/python_runner.hpp"

namespace faas::runtime {

class InProcessExecutor final : public Executor {
 public:
  InProcessExecutor(const ExecutorOptions& options, CallSink sink);
  ~InProcessExecutor() override;

  void submit(std::unique_ptr<Call> call) override;
  bool run_inline(Call& call) override;
  void load(const std::shared_ptr<const FunctionSpec>& function) override;
  void retire(const std::string& name, std::uint64_t keep_revision) override;
  std::size_t loaded_count() const override { return runner_.loaded_count(); }
  std::size_t queued() const override;
  void stop() override;

 private:
  struct LoadJob;
  struct Task {
    std::unique_ptr<Call> call;
    LoadJob* load = nullptr;
  };
  struct Worker {
    std::thread thread;
    CallSlot slot;  // the watchdog reads it
  };

  void work(Worker& me);
  void watch();
  // GIL held for these.
  void run_call(Call& call, CallSlot& slot);
  void run_load(LoadJob& job, CallSlot& slot);

  PythonRunner runner_;
  ExecutorOptions options_;
  CallSink sink_;

  mutable std::mutex mutex_;             // lock order: GIL before mutex_, never the reverse
  std::condition_variable work_cv_;
  std::condition_variable watch_cv_;
  std::deque<Task> queue_;
  std::atomic<std::size_t> queued_{0};  // queue_.size(), for a worker looking without the lock
  unsigned idle_ = 0;        // threads waiting for work
  unsigned busy_ = 0;        // threads holding or taking the GIL to drain the queue
  unsigned acquiring_ = 0;   // of those, threads still waiting for the GIL
  std::uint64_t completed_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  bool watch_stop_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  CallSlot inline_slot_;     // the slot of a call run by run_inline(), for the watchdog
  bool inline_busy_ = false;
  bool watch_idle_ = false;  // the watchdog sleeps the long period and must be woken for new work
  std::thread watchdog_;
};

}  // namespace faas::runtime
