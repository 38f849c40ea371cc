#include "runtime/process_executor.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "faas/error.hpp"
#include "runtime/sandbox.hpp"

namespace fs = std::filesystem;

namespace faas::runtime {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t max_batch = 8;             // calls sent to a worker before reading the first result
constexpr std::size_t max_batch_bytes = 64 * 1024;  // well within a socket's buffer, so sending never blocks
constexpr auto start_timeout = std::chrono::seconds(10);
constexpr auto manage_period = std::chrono::seconds(1);

fs::path find_worker_program(const fs::path& configured) {
  if (!configured.empty()) return configured;
  if (const char* from_env = std::getenv("FAAS_WORKER_PROGRAM"); from_env != nullptr && *from_env != '\0') {
    return from_env;
  }
  std::error_code ec;
  std::vector<fs::path> candidates{fs::read_symlink("/proc/self/exe", ec).parent_path() / "faas-worker"};
#ifdef FAAS_WORKER_BUILD_PATH
  candidates.emplace_back(FAAS_WORKER_BUILD_PATH);
#endif
#ifdef FAAS_WORKER_INSTALL_PATH
  candidates.emplace_back(FAAS_WORKER_INSTALL_PATH);
#endif
  for (const auto& candidate : candidates) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw Error(ErrorCode::invalid_input,
              "process isolation needs the faas-worker program: none found next to this program or where the build "
              "put it; set FAAS_WORKER_PROGRAM");
}

// What a worker's environment holds: nothing of the server's (no HTTP password, no broker credentials).
std::vector<std::string> worker_environment() {
  std::vector<std::string> env{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp",
                               "MALLOC_ARENA_MAX=2"};  // fewer malloc arenas: less address space under RLIMIT_AS
  for (const char* name : {"TZ", "TMPDIR", "ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
  }
  return env;
}

}  // namespace

ProcessExecutor::ProcessExecutor(const ExecutorOptions& options, CallSink sink)
    : options_(options), sink_(std::move(sink)) {
  const auto& workers = options_.workers;
  max_total_ = workers.max_total;
  if (max_total_ == 0) {
    auto memory_mb = static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) / 1024 *
                     static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024;
    max_total_ = std::clamp<std::size_t>(memory_mb / 64, 8, 512);
  }
  // Sandboxed, the worker is the first process of its own PID namespace: its parent is out of its sight.
  worker_argv_ = {find_worker_program(workers.program).string(),
                  "--parent", std::to_string(workers.sandbox ? 0 : ::getpid()),
                  "--output-limit", std::to_string(options_.output_limit),
                  "--result-limit", std::to_string(workers.result_limit),
                  "--python", options_.python.string(),
                  "--max-open-files", std::to_string(workers.max_open_files)};
  if (workers.sandbox) {
    worker_argv_.insert(worker_argv_.end(), {"--confined", "--max-processes", std::to_string(workers.max_processes),
                                             "--max-file-mb", std::to_string(workers.tmp_mb)});
  } else {
    spdlog::warn("workers run without the sandbox: every function holds the server's authority over its files, "
                 "network and processes (docs/security.md)");
  }
  worker_env_ = worker_environment();
  manager_ = std::thread([this] { manage(); });
  // Wait for the first spare: a worker that cannot start at all (no program, a sandbox the machine refuses) is
  // a configuration error the server should report at once, not at the first call.
  std::unique_lock lock(mutex_);
  ++spares_awaited_;
  spare_cv_.wait(lock, [&] { return !spares_.empty() || spawn_failures_ > 0; });
  --spares_awaited_;
  if (spares_.empty()) {
    manager_stop_ = true;
    lock.unlock();
    manager_cv_.notify_all();
    manager_.join();
    throw Error(ErrorCode::invalid_input, last_spawn_error_);
  }
  // Sandboxed, that first worker was a probe: workers are started for the function they run.
  if (workers.sandbox) spares_.clear();
}

ProcessExecutor::~ProcessExecutor() { stop(); }

std::unique_ptr<WorkerProcess> ProcessExecutor::spawn_process(const FunctionSpec* function) {
  std::unique_ptr<WorkerProcess> process;
  if (options_.workers.sandbox) {
    auto confinement = worker_confinement(options_.workers, worker_argv_.front(), function);
    process = WorkerProcess::spawn(worker_argv_, worker_env_, &confinement);
  } else {
    process = WorkerProcess::spawn(worker_argv_, worker_env_);
  }
  std::string_view frame;
  auto received = process->receive(Clock::now() + start_timeout, frame);
  if (received == WorkerProcess::Received::frame && wire::FrameReader(frame).kind() == wire::Kind::hello) {
    return process;
  }
  if (received == WorkerProcess::Received::timeout) process->kill();
  throw Error(ErrorCode::internal, "faas-worker " + process->reap() + " before it was ready (its stderr says why)");
}

std::unique_ptr<WorkerProcess> ProcessExecutor::take_process(const FunctionSpec& function) {
  std::unique_lock lock(mutex_);
  if (options_.workers.sandbox) {
    SpawnRequest request;
    request.function = &function;
    spawn_requests_.push_back(&request);
    manager_cv_.notify_one();
    spare_cv_.wait(lock, [&] { return request.done; });
    if (!request.process) throw Error(ErrorCode::internal, request.error);
    return std::move(request.process);
  }
  if (spares_.empty()) {
    // Only the manager thread starts workers: PR_SET_PDEATHSIG kills a worker when the *thread* that started it
    // ends, and the manager lives as long as the executor.
    auto failures = spawn_failures_;
    ++spares_awaited_;
    manager_cv_.notify_one();
    spare_cv_.wait(lock, [&] { return !spares_.empty() || spawn_failures_ != failures; });
    --spares_awaited_;
    if (spares_.empty()) throw Error(ErrorCode::internal, last_spawn_error_);
  }
  auto process = std::move(spares_.front());
  spares_.pop_front();
  manager_cv_.notify_one();  // start its replacement
  return process;
}

ProcessExecutor::Loading ProcessExecutor::load_in(WorkerProcess& process, const FunctionSpec& function) {
  std::string out;
  wire::write_load(out, function);
  if (!process.send(out)) return {"the worker " + process.reap() + " before importing func.py", true};
  std::string_view reply;
  auto received = process.receive(Clock::now() + function.timeout + options_.workers.kill_grace, reply);
  if (received == WorkerProcess::Received::timeout) {
    process.kill();
    process.reap();
    return {"importing func.py took longer than the timeout (" + timeout_message(function.timeout) + ")"};
  }
  if (received == WorkerProcess::Received::gone) return {"the worker " + process.reap() + " while importing func.py"};
  try {
    wire::FrameReader loaded(reply);
    if (loaded.kind() != wire::Kind::loaded) throw Error(ErrorCode::internal, "unexpected reply to load");
    return {std::string(loaded.text())};
  } catch (const Error& e) {
    process.kill();
    return {std::string("the worker broke the protocol: ") + e.what()};
  }
}

std::unique_ptr<WorkerProcess> ProcessExecutor::load_in_spare(const FunctionSpec& function) {
  for (int attempt = 0;; ++attempt) {
    auto process = take_process(function);  // throws Error(internal)
    auto loading = load_in(*process, function);
    if (loading.error.empty()) return process;
    if (!loading.dead_before || attempt > 0) throw Error(ErrorCode::build_failed, loading.error);
    spdlog::warn("a spare worker {}; taking another", process->reap());
  }
}

void ProcessExecutor::load(const std::shared_ptr<const FunctionSpec>& function) {
  auto process = load_in_spare(*function);  // throws Error(internal | build_failed)

  // Workers started later import from the function's folder, where the files are by then.
  auto settled = std::make_shared<FunctionSpec>(*function);
  settled->staged_source.clear();
  std::lock_guard lock(mutex_);
  if (stopping_) throw Error(ErrorCode::shutting_down, "the engine is shutting down");
  auto& slot = pools_[function->name];
  if (!slot) slot = std::make_shared<Pool>();
  if (slot->spec && slot->spec->revision > function->revision) return;  // a newer revision is already in
  slot->spec = settled;
  retire_older(*slot);
  make_room();  // the new worker counts against the budget (it is kept even when all others are busy)
  auto worker = std::make_shared<Worker>();
  worker->process = std::move(process);
  worker->spec = settled;
  slot->workers.push_back(worker);
  ++drivers_;
  std::thread([this, pool = slot, worker] { drive(pool, worker); }).detach();
}

void ProcessExecutor::start_worker(const std::shared_ptr<Pool>& pool) {
  if (!make_room()) {
    pool->starved = true;  // the first worker to go idle makes room for it
    some_starved_ = true;
    return;
  }
  pool->starved = false;
  auto worker = std::make_shared<Worker>();
  worker->spec = pool->spec;
  pool->workers.push_back(worker);
  ++drivers_;
  std::thread([this, pool, worker] { drive(pool, worker); }).detach();
}

bool ProcessExecutor::make_room() {
  std::size_t live = 0;
  std::shared_ptr<Worker> oldest;
  Pool* oldest_pool = nullptr;
  for (auto& [name, pool] : pools_) {
    live += active_workers(*pool);
    for (auto& worker : pool->workers) {
      if (worker->ready && !worker->busy && !worker->retiring && (!oldest || worker->last_used < oldest->last_used)) {
        oldest = worker;
        oldest_pool = pool.get();
      }
    }
  }
  if (live < max_total_) return true;
  if (!oldest) return false;
  oldest->retiring = true;
  oldest_pool->work_cv.notify_all();
  return true;
}

void ProcessExecutor::serve_starved() {
  if (!some_starved_) return;
  some_starved_ = false;
  for (auto& [name, pool] : pools_) {
    if (!pool->starved) continue;
    if (pool->queue.empty()) {
      pool->starved = false;
    } else if (starting_workers(*pool) == 0) {
      start_worker(pool);  // sets some_starved_ again when there is still no room
    } else {
      pool->starved = false;
    }
    if (pool->starved) some_starved_ = true;
  }
}

void ProcessExecutor::retire_older(Pool& pool) {
  for (auto& worker : pool.workers) {
    if (!pool.spec || worker->spec->revision < pool.spec->revision) worker->retiring = true;
  }
  pool.work_cv.notify_all();
}

std::size_t ProcessExecutor::idle_workers(const Pool& pool) const {
  std::size_t count = 0;
  for (const auto& worker : pool.workers) count += worker->ready && !worker->busy && !worker->retiring;
  return count;
}

std::size_t ProcessExecutor::starting_workers(const Pool& pool) const {
  std::size_t count = 0;
  for (const auto& worker : pool.workers) count += !worker->ready && !worker->retiring;
  return count;
}

std::size_t ProcessExecutor::active_workers(const Pool& pool) const {
  std::size_t count = 0;
  for (const auto& worker : pool.workers) count += !worker->retiring;
  return count;
}

void ProcessExecutor::submit(std::unique_ptr<Call> call) {
  std::lock_guard lock(mutex_);
  auto& slot = pools_[call->function->name];
  if (!slot) slot = std::make_shared<Pool>();
  Pool& pool = *slot;
  // A newer revision than the pool runs: uploaded or set by another process sharing the data dir.
  if (!pool.spec || call->function->revision > pool.spec->revision) {
    pool.spec = call->function;
    retire_older(pool);
  }
  pool.queue.push_back(std::move(call));
  ++queued_;
  if (idle_workers(pool) > 0) {
    pool.work_cv.notify_all();
  } else if (starting_workers(pool) < pool.queue.size() &&
             active_workers(pool) < std::max(1u, pool.spec->max_workers)) {
    start_worker(slot);  // more calls wait than workers are on their way
  }
}

bool ProcessExecutor::run_inline(Call& call) {
  std::shared_ptr<Pool> pool;
  std::shared_ptr<Worker> worker;
  {
    std::lock_guard lock(mutex_);
    auto it = pools_.find(call.function->name);
    if (stopping_ || it == pools_.end()) return false;
    pool = it->second;
    if (!pool->queue.empty() || !pool->spec || call.function->revision > pool->spec->revision) return false;
    for (auto& candidate : pool->workers) {
      if (candidate->ready && !candidate->busy && !candidate->retiring) {
        worker = candidate;
        break;
      }
    }
    if (!worker) return false;
    worker->busy = true;  // its driver leaves it to us
  }
  Exchange result = exchange(*worker, {&call});
  std::lock_guard lock(mutex_);
  worker->busy = false;
  worker->last_used = Clock::now();
  if (!result.alive) worker->retiring = true;  // its driver cleans up
  pool->work_cv.notify_all();
  return result.finished == 1;  // else the worker was dead before the call reached it: the caller submits it
}

ProcessExecutor::Exchange ProcessExecutor::exchange(Worker& worker, const std::vector<Call*>& calls) {
  std::string out;
  for (Call* call : calls) {
    wire::FrameWriter(out, wire::Kind::call)
        .text(call->request.args)
        .text(call->request.kwargs)
        .text(call->record.id)
        .text(call->record.traceparent())
        .u64(static_cast<std::uint64_t>(call_timeout(*worker.spec, call->request.timeout).count()))
        .finish();
  }
  WorkerProcess& process = *worker.process;
  Exchange result;
  auto started = Clock::now();  // of the call at the head: each starts when the previous one's result is out
  if (!process.send(out)) {
    // The worker had died before these were sent (killed while idle, say): none of them ran, and they go to a
    // fresh worker.
    process.reap();
    return Exchange{0, false};
  }
  bool sent = true;
  bool retiring = false;
  for (Call* call : calls) {
    std::string_view frame;
    const auto timeout = call_timeout(*worker.spec, call->request.timeout);
    const auto deadline = started + timeout + options_.workers.kill_grace;
    auto received = sent ? process.receive(deadline, frame) : WorkerProcess::Received::gone;
    // A streaming function's chunks come before its result, each passed on as it arrives.
    auto is_chunk = [](std::string_view f) { return f.size() > 4 && static_cast<wire::Kind>(f[4]) == wire::Kind::chunk; };
    while (received == WorkerProcess::Received::frame && is_chunk(frame)) {
      try {
        wire::FrameReader reader(frame);
        auto chunk = reader.text();
        ++call->record.chunks;  // counted here too: a worker killed at the timeout sends no result
        if (call->request.on_chunk) call->request.on_chunk(chunk);
      } catch (const Error&) {
        break;  // malformed: read_result below refuses it
      }
      received = process.receive(deadline, frame);
    }
    Invocation& record = call->record;
    ++result.finished;
    if (received == WorkerProcess::Received::frame) {
      try {
        wire::FrameReader reader(frame);
        retiring = wire::read_result(reader, record);
        take_request(*call);
        record.version = worker.spec->version;
      } catch (const Error& e) {
        process.kill();
        take_request(*call);
        record.fail("WorkerCrashed", std::string("the worker broke the protocol: ") + e.what());
        result.alive = false;
        return result;
      }
      started = Clock::now();
      // Its heap may stay huge (a MemoryLimit), or the call left threads running (the worker exits): the calls
      // sent after this one were not run, and go to a fresh worker.
      if (record.error_type == "MemoryLimit" || retiring) {
        if (retiring) {
          spdlog::warn("function {}: a call left threads running; its worker was replaced", call->function->name);
        }
        process.kill();
        result.alive = false;
        return result;
      }
      continue;
    }
    // The call at the head did not finish: the worker hangs past the timeout, or died.
    auto ran = Clock::now() - started;
    take_request(*call);
    record.time_end = Invocation::Clock::now();
    record.time_start = record.time_end - std::chrono::duration_cast<Invocation::Clock::duration>(ran);
    record.duration_ms = std::chrono::duration<double, std::milli>(ran).count();
    record.output.clear();
    if (received == WorkerProcess::Received::timeout) {
      process.kill();
      process.reap();
      record.fail("Timeout", timeout_message(timeout) + "; its worker was killed");
    } else {
      record.fail("WorkerCrashed", "the worker running the function " + process.reap());
    }
    result.alive = false;
    return result;
  }
  return result;
}

void ProcessExecutor::drive(std::shared_ptr<Pool> pool, std::shared_ptr<Worker> worker) {
  if (!worker->process) {  // a new worker: take a spare and import the function there
    std::string error;
    std::unique_ptr<WorkerProcess> process;
    try {
      process = load_in_spare(*worker->spec);
    } catch (const Error& e) {
      error = e.what();
    }
    std::unique_lock lock(mutex_);
    if (!error.empty()) {
      auto listed = pools_.find(worker->spec->name);
      if (listed != pools_.end() && listed->second == pool) {  // not merely deleted meanwhile
        spdlog::warn("function {}: cannot start a worker: {}", worker->spec->name, error);
      }
      pool->workers.remove(worker);
      std::deque<std::unique_ptr<Call>> failed;
      if (idle_workers(*pool) == 0) {  // nobody else can run them
        failed.swap(pool->queue);
        queued_ -= failed.size();
      }
      lock.unlock();
      fail_calls(std::move(failed), "LoadError", "function could not be loaded: " + error);
      process.reset();
      lock.lock();
      --drivers_;
      drivers_cv_.notify_all();
      return;
    }
    worker->process = std::move(process);
  }

  std::unique_lock lock(mutex_);
  worker->ready = true;
  worker->busy = false;
  worker->last_used = Clock::now();
  std::vector<std::unique_ptr<Call>> batch;
  std::vector<Call*> calls;
  for (;;) {
    pool->work_cv.wait(lock, [&] {
      return !worker->busy && (worker->retiring || !pool->queue.empty() || stopping_);
    });
    if (worker->retiring || pool->queue.empty()) break;  // retired, or stopping with nothing left


    // One call at a time unless calls pile up; then a share of the queue, to save wake-ups on both sides.
    std::size_t idle = std::max<std::size_t>(1, idle_workers(*pool));
    std::size_t take = std::clamp<std::size_t>(pool->queue.size() / idle, 1, max_batch);
    std::size_t bytes = 0;
    batch.clear();
    calls.clear();
    while (batch.size() < take && !pool->queue.empty()) {
      auto& next = pool->queue.front();
      bytes += next->request.args.size() + next->request.kwargs.size();
      if (!batch.empty() && bytes > max_batch_bytes) break;
      batch.push_back(std::move(next));
      calls.push_back(batch.back().get());
      pool->queue.pop_front();
    }
    queued_ -= batch.size();
    worker->busy = true;
    lock.unlock();

    Exchange result = exchange(*worker, calls);
    for (std::size_t i = 0; i < result.finished; ++i) sink_(std::move(batch[i]));

    lock.lock();
    worker->busy = false;
    worker->last_used = Clock::now();
    if (some_starved_ && pool->queue.empty()) worker->retiring = true;  // idle now: make room for them
    if (!result.alive) {
      for (std::size_t i = batch.size(); i > result.finished; --i) {  // not started: back to the front
        pool->queue.push_front(std::move(batch[i - 1]));
        ++queued_;
      }
      break;
    }
  }

  pool->workers.remove(worker);
  auto listed = pools_.find(worker->spec->name);
  bool current = listed != pools_.end() && listed->second == pool;
  if (current && !pool->queue.empty() && pool->spec) {
    if (idle_workers(*pool) > 0) {
      pool->work_cv.notify_all();
    } else if (starting_workers(*pool) < pool->queue.size() &&
               active_workers(*pool) < std::max(1u, pool->spec->max_workers)) {
      start_worker(pool);  // its replacement
    }
  }
  if (!stopping_) serve_starved();  // its place in the budget is free
  auto process = std::move(worker->process);
  lock.unlock();
  process.reset();  // end-of-file, then SIGKILL to what is left; reaped
  lock.lock();
  --drivers_;
  drivers_cv_.notify_all();
}

void ProcessExecutor::fail_calls(std::deque<std::unique_ptr<Call>> calls, const std::string& error_type,
                                 const std::string& error) {
  for (auto& call : calls) {
    take_request(*call);
    call->record.time_start = call->record.time_end = Invocation::Clock::now();
    call->record.fail(error_type, error);
    sink_(std::move(call));
  }
}

void ProcessExecutor::retire(const std::string& name, std::uint64_t keep_revision) {
  std::deque<std::unique_ptr<Call>> orphans;
  {
    std::lock_guard lock(mutex_);
    auto it = pools_.find(name);
    if (it == pools_.end()) return;
    Pool& pool = *it->second;
    for (auto& worker : pool.workers) {
      if (keep_revision == 0 || worker->spec->revision != keep_revision) worker->retiring = true;
    }
    if (keep_revision == 0) {
      orphans.swap(pool.queue);
      queued_ -= orphans.size();
      pools_.erase(it);
    } else if (pool.spec && pool.spec->revision != keep_revision) {
      pool.spec = nullptr;  // the next call brings the version to run
    }
    pool.work_cv.notify_all();
  }
  fail_calls(std::move(orphans), "LoadError", "function could not be loaded: it was deleted");
}

std::size_t ProcessExecutor::loaded_count() const {
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& [name, pool] : pools_) count += pool->spec != nullptr;
  return count;
}

std::size_t ProcessExecutor::queued() const {
  std::lock_guard lock(mutex_);
  return queued_;
}

Executor::WorkerCount ProcessExecutor::workers() const {
  std::lock_guard lock(mutex_);
  WorkerCount count;
  for (const auto& [name, pool] : pools_) {
    count.total += pool->workers.size();
    for (const auto& worker : pool->workers) count.busy += worker->busy;
  }
  return count;
}

void ProcessExecutor::manage() {
  std::unique_lock lock(mutex_);
  auto wanted = [&] {  // spares to have: fewer once stopping, but never fewer than callers waiting for one
    std::size_t target = stopping_ || options_.workers.sandbox ? 0 : options_.workers.spares;
    return std::max<std::size_t>(target, spares_awaited_);
  };
  while (!manager_stop_) {
    while (!spawn_requests_.empty()) {
      auto* request = spawn_requests_.front();
      spawn_requests_.pop_front();
      lock.unlock();
      try {
        request->process = spawn_process(request->function);
      } catch (const Error& e) {
        request->error = e.what();
        spdlog::warn("cannot start a worker: {}", request->error);
      }
      lock.lock();
      request->done = true;
      spare_cv_.notify_all();
    }
    while (spares_.size() + spares_starting_ < wanted() && !manager_stop_) {
      ++spares_starting_;
      lock.unlock();
      std::unique_ptr<WorkerProcess> process;
      std::string error;
      try {
        process = spawn_process(nullptr);
      } catch (const Error& e) {
        error = e.what();
      }
      lock.lock();
      --spares_starting_;
      if (!process) {
        spdlog::warn("cannot start a worker: {}", error);
        last_spawn_error_ = error;
        ++spawn_failures_;
        spare_cv_.notify_all();
        manager_cv_.wait_for(lock, manage_period, [&] { return manager_stop_; });  // then try again
        break;
      }
      spares_.push_back(std::move(process));
      spare_cv_.notify_all();
    }
    drop_dead_idle();
    // Stop workers idle for idle_timeout, down to the minimum per function.
    auto now = Clock::now();
    for (auto& [name, pool] : pools_) {
      std::size_t active = active_workers(*pool);
      for (auto& worker : pool->workers) {
        if (!pool->spec || active <= pool->spec->min_workers) break;
        if (worker->ready && !worker->busy && !worker->retiring &&
            now - worker->last_used > options_.workers.idle_timeout) {
          worker->retiring = true;
          --active;
          pool->work_cv.notify_all();
        }
      }
    }
    manager_cv_.wait_for(lock, manage_period, [&] {
      return manager_stop_ || !spawn_requests_.empty() || spares_.size() + spares_starting_ < wanted();
    });
  }
}

void ProcessExecutor::drop_dead_idle() {
  // A worker killed from outside while it waited is noticed here rather than by the next call, and its driver
  // reaps it at once.
  for (auto& [name, pool] : pools_) {
    for (auto& worker : pool->workers) {
      if (worker->ready && !worker->busy && !worker->retiring && worker->process && worker->process->hung_up()) {
        spdlog::warn("function {}: a worker died while idle; replacing it", name);
        worker->retiring = true;
        pool->work_cv.notify_all();
        if (pool->spec && active_workers(*pool) < pool->spec->min_workers) start_worker(pool);
      }
    }
  }
  std::erase_if(spares_, [](const std::unique_ptr<WorkerProcess>& spare) { return spare->hung_up(); });
}

void ProcessExecutor::stop() {
  std::deque<std::unique_ptr<WorkerProcess>> spares;
  {
    std::unique_lock lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    for (auto& [name, pool] : pools_) pool->work_cv.notify_all();
    // Each driver finishes its pool's queue first (the manager keeps starting workers they need meanwhile).
    drivers_cv_.wait(lock, [&] { return drivers_ == 0; });
    manager_stop_ = true;
    spares.swap(spares_);
  }
  manager_cv_.notify_all();
  if (manager_.joinable()) manager_.join();
}

}  // namespace faas::runtime
