#include "runtime/inprocess_executor.hpp"

#include <future>

#include "faas/error.hpp"

namespace faas::runtime {

namespace {

constexpr auto watch_period = std::chrono::milliseconds(5);
constexpr auto idle_watch_period = std::chrono::milliseconds(50);
constexpr auto spin_period = std::chrono::microseconds(50);

}  // namespace

struct InProcessExecutor::LoadJob {
  std::shared_ptr<const FunctionSpec> function;
  std::promise<void> done;  // or the Error that prevented it
};

InProcessExecutor::InProcessExecutor(const ExecutorOptions& options, CallSink sink)
    : runner_(PythonHost::get(options.python), RunnerLimits{options.output_limit}),
      options_(options),
      sink_(std::move(sink)) {
  unsigned count = std::max(1u, options_.threads);
  for (unsigned i = 0; i < count; ++i) workers_.push_back(std::make_unique<Worker>());
  for (auto& worker : workers_) {
    Worker* me = worker.get();
    worker->thread = std::thread([this, me] { work(*me); });
  }
  watchdog_ = std::thread([this] { watch(); });
}

InProcessExecutor::~InProcessExecutor() {
  stop();
  GilLock gil;
  runner_.retire_all();
}

void InProcessExecutor::submit(std::unique_ptr<Call> call) {
  std::lock_guard lock(mutex_);
  queue_.push_back(Task{std::move(call), nullptr});
  queued_.store(queue_.size(), std::memory_order_relaxed);
  // A busy thread will reach this call; if it is stuck, the watchdog brings a helper.
  if (busy_ == 0 && idle_ > 0) work_cv_.notify_one();
}

bool InProcessExecutor::run_inline(Call& call) {
  {
    std::lock_guard lock(mutex_);
    if (busy_ != 0 || !queue_.empty() || stopping_) return false;
    ++busy_;  // submit() now leaves new work for us to hand over below
    inline_busy_ = true;
  }
  // Hand back the executor even if the call throws (bad_alloc), or it would stay busy for good.
  struct Release {
    InProcessExecutor& self;
    ~Release() {
      std::lock_guard lock(self.mutex_);
      self.inline_busy_ = false;
      --self.busy_;
      ++self.completed_;
      if (!self.queue_.empty() && self.idle_ > 0) self.work_cv_.notify_one();
    }
  } release{*this};
  GilLock gil;
  run_call(call, inline_slot_);
  return true;
}

std::size_t InProcessExecutor::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void InProcessExecutor::load(const std::shared_ptr<const FunctionSpec>& function) {
  LoadJob job{function, {}};
  auto result = job.done.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw Error(ErrorCode::shutting_down, "the engine is shutting down");
    queue_.push_back(Task{nullptr, &job});
    queued_.store(queue_.size(), std::memory_order_relaxed);
    if (busy_ == 0 && idle_ > 0) work_cv_.notify_one();
  }
  result.get();  // rethrows the load's Error
}

void InProcessExecutor::retire(const std::string& name, std::uint64_t keep_revision) {
  GilLock gil;
  runner_.retire(name, keep_revision);
}

void InProcessExecutor::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& worker : workers_) worker->thread.join();
  {
    std::lock_guard lock(mutex_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  watchdog_.join();
}

void InProcessExecutor::work(Worker& me) {
  ThreadState python;
  std::unique_lock lock(mutex_);
  for (;;) {
    while (queue_.empty() && !stopping_) {
      ++idle_;
      work_cv_.wait(lock);
      --idle_;
    }
    if (queue_.empty()) break;  // stopping, and nothing left
    if (busy_++ == 0 && watch_idle_) watch_cv_.notify_one();
    ++acquiring_;
    lock.unlock();
    python.acquire();
    lock.lock();
    --acquiring_;
    while (!queue_.empty()) {
      Task task = std::move(queue_.front());
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_relaxed);
      lock.unlock();
      if (task.call) {
        run_call(*task.call, me.slot);
        sink_(std::move(task.call));
      } else {
        run_load(*task.load, me.slot);
      }
      lock.lock();
      ++completed_;
      if (queue_.empty()) {
        // Stay busy a moment before sleeping: under a steady stream the next call usually comes within
        // microseconds, and finding it here spares its submitter a wake-up syscall and us a context switch.
        lock.unlock();
        auto until = std::chrono::steady_clock::now() + spin_period;
        while (queued_.load(std::memory_order_relaxed) == 0 && std::chrono::steady_clock::now() < until) {
          std::this_thread::yield();
        }
        lock.lock();
      }
    }
    lock.unlock();
    python.release();
    lock.lock();
    --busy_;
  }
}

void InProcessExecutor::watch() {
  std::unique_lock lock(mutex_);
  std::uint64_t last_completed = completed_;
  while (!watch_stop_) {
    if (busy_ == 0 && !inline_busy_ && completed_ == last_completed) {
      // Nothing ran for a whole period: sleep longer, until a worker wakes us. While calls keep coming we stay
      // in the short period, so busy workers need not wake us for every call. Calls run by run_inline() never
      // wake us (that would cost the caller a syscall), so their timeouts are enforced up to this period late.
      watch_idle_ = true;
      watch_cv_.wait_for(lock, idle_watch_period);
      watch_idle_ = false;
      last_completed = completed_;
      if (busy_ == 0 && !inline_busy_) continue;
    }
    watch_cv_.wait_for(lock, watch_period);
    // Work waits, nothing finished for a whole period, and nobody is already on the way to the GIL: every busy
    // thread is stuck in a call. Bring one more thread; it takes the GIL as soon as a stuck call lets go of it.
    if (!queue_.empty() && completed_ == last_completed && acquiring_ == 0 && idle_ > 0) work_cv_.notify_one();
    last_completed = completed_;
    lock.unlock();
    auto now = steady_now_ns();
    inline_slot_.interrupt_if_late(runner_.host(), now);
    for (auto& worker : workers_) worker->slot.interrupt_if_late(runner_.host(), now);
    lock.lock();
  }
}

void InProcessExecutor::run_load(LoadJob& job, CallSlot& slot) {
  try {
    runner_.load(*job.function, slot);
    job.done.set_value();
  } catch (...) {
    job.done.set_exception(std::current_exception());
  }
}

void InProcessExecutor::run_call(Call& call, CallSlot& slot) {
  take_request(call);
  runner_.run(*call.function, call.record, slot, call.request.on_chunk, call.request.timeout);
}

}  // namespace faas::runtime
