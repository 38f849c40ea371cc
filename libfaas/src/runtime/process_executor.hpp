// Runs each function in warm faas-worker processes of its own (Isolation::process).
//
// Per function, a pool of workers (WorkerConfig: min..max), each holding the function's module imported once and
// only that function's virtualenv on sys.path. A worker is driven by one thread here, which sends it calls (a few
// at a time when the queue is long, so a busy pool pays fewer wake-ups) and reads their results in order. A lone
// synchronous caller that finds a worker idle talks to it directly (run_inline), saving that hand-off.
//
// Hard limits: a call still running `kill_grace` after its timeout gets its worker SIGKILLed (error_type
// "Timeout"); a worker that dies gives its running call "WorkerCrashed" with the exit code or signal, the calls
// it had not started go back to the queue, and a fresh worker takes over. Spare workers (Python up, nothing
// loaded) are kept ready, so an upload imports in an already running process.
#pragma once

#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/executor.hpp"
#include "runtime/worker_process.hpp"

namespace faas::runtime {

class ProcessExecutor final : public Executor {
 public:
  ProcessExecutor(const ExecutorOptions& options, CallSink sink);
  ~ProcessExecutor() override;

  void submit(std::unique_ptr<Call> call) override;
  bool run_inline(Call& call) override;
  void load(const std::shared_ptr<const FunctionSpec>& function) override;
  void retire(const std::string& name, std::uint64_t keep_revision) override;
  std::size_t loaded_count() const override;
  std::size_t queued() const override;
  WorkerCount workers() const override;
  void stop() override;

 private:
  struct Worker {
    std::unique_ptr<WorkerProcess> process;
    std::shared_ptr<const FunctionSpec> spec;  // the version it loads or has loaded
    bool ready = false;     // loaded, serving
    bool busy = true;       // starting, or running calls (for its driver or run_inline)
    bool retiring = false;  // finish what it holds, then stop
    std::chrono::steady_clock::time_point last_used;
  };
  struct Pool {
    std::shared_ptr<const FunctionSpec> spec;  // the version new calls run
    std::deque<std::unique_ptr<Call>> queue;
    std::list<std::shared_ptr<Worker>> workers;
    std::condition_variable work_cv;  // its drivers wait here
    bool starved = false;  // calls wait and no worker could start within the budget
  };
  struct Exchange {
    std::size_t finished = 0;  // calls with a record, from the first
    bool alive = true;         // false: the worker is gone; calls after `finished` were not run
  };
  struct Loading {
    std::string error;          // empty: loaded
    bool dead_before = false;   // the process had died before it was sent the function: try another
  };

  // mutex_ held for these.
  void start_worker(const std::shared_ptr<Pool>& pool);
  void retire_older(Pool& pool);
  std::size_t idle_workers(const Pool& pool) const;
  std::size_t starting_workers(const Pool& pool) const;
  std::size_t active_workers(const Pool& pool) const;  // not retiring
  // Within max_total: true when a worker may start now, after retiring the least recently used idle worker if
  // the budget is spent; false when every worker is busy.
  bool make_room();
  // Starts a worker for a pool that waited for room, if there is room now.
  void serve_starved();

  void drive(std::shared_ptr<Pool> pool, std::shared_ptr<Worker> worker);
  // A process to load `function` in: a spare, waiting for one if needed, or, sandboxed, one the manager starts
  // with that function's folder and virtualenv in view. Throws Error(internal).
  std::unique_ptr<WorkerProcess> take_process(const FunctionSpec& function);
  // The manager thread only. `function`: sandboxed, the function the worker will load (null: none).
  std::unique_ptr<WorkerProcess> spawn_process(const FunctionSpec* function);
  // Sends `function`'s load; the process is unusable unless it succeeded.
  Loading load_in(WorkerProcess& process, const FunctionSpec& function);
  // A process with `function` loaded: a spare (another one if the first had died while waiting), then the load.
  // Throws Error(internal) when no spare can be had, Error(build_failed) when the function does not load.
  std::unique_ptr<WorkerProcess> load_in_spare(const FunctionSpec& function);
  Exchange exchange(Worker& worker, const std::vector<Call*>& calls);
  void fail_calls(std::deque<std::unique_ptr<Call>> calls, const std::string& error_type, const std::string& error);
  void manage();  // starts every worker process (spares, and on demand), stops idle workers, notices dead ones
  void drop_dead_idle();  // mutex_ held

  ExecutorOptions options_;
  CallSink sink_;
  std::size_t max_total_ = 0;  // the budget of workers across functions (resolved from max_total)
  bool some_starved_ = false;  // a pool waits for room in the budget
  std::vector<std::string> worker_argv_;
  std::vector<std::string> worker_env_;

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Pool>> pools_;
  std::deque<std::unique_ptr<WorkerProcess>> spares_;
  std::size_t spares_starting_ = 0;
  std::size_t spares_awaited_ = 0;     // callers of take_process() waiting for a spare
  std::uint64_t spawn_failures_ = 0;   // wakes those waiters when starting one failed
  std::string last_spawn_error_;
  // Sandboxed, a worker is started for the function it will run (its files are bound in at start).
  struct SpawnRequest {
    const FunctionSpec* function = nullptr;
    std::unique_ptr<WorkerProcess> process;
    std::string error;
    bool done = false;
  };
  std::deque<SpawnRequest*> spawn_requests_;
  unsigned drivers_ = 0;          // driver threads alive (detached; stop() waits for none)
  std::size_t queued_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  bool manager_stop_ = false;         // after every driver is gone
  std::condition_variable spare_cv_;
  std::condition_variable manager_cv_;
  std::condition_variable drivers_cv_;
  std::thread manager_;
};

}  // namespace faas::runtime
