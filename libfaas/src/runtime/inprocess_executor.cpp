#include "runtime/inprocess_executor.hpp"

#include <future>

#include "faas/error.hpp"
#include "runtime/convert.hpp"

namespace py = pybind11;

namespace faas::runtime {

namespace {

constexpr auto watch_period = std::chrono::milliseconds(5);
constexpr auto idle_watch_period = std::chrono::milliseconds(50);
constexpr auto spin_period = std::chrono::microseconds(50);

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void cap(std::string& text, std::size_t limit) {
  if (text.size() > limit) {
    text.resize(limit);
    text += "\n[truncated]";
  }
}

void fail_record(Invocation& record, std::string error_type, std::string error) {
  record.status = InvocationStatus::error;
  record.error_type = std::move(error_type);
  record.error = std::move(error);
}

}  // namespace

struct InProcessExecutor::LoadJob {
  std::shared_ptr<const FunctionSpec> function;
  std::promise<std::string> done;  // empty string: loaded; otherwise why not
};

InProcessExecutor::InProcessExecutor(const ExecutorOptions& options, CallSink sink)
    : host_(PythonHost::get(options.python)), options_(options), sink_(std::move(sink)) {
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
  for (auto& [name, loaded] : loaded_) host_.unload_module(loaded.module_name);
  loaded_.clear();
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
  inline_worker_.python_thread_id = PyThreadState_Get()->thread_id;
  run_call(call, inline_worker_);
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
  std::string error = result.get();
  if (!error.empty()) throw Error(ErrorCode::build_failed, error);
}

void InProcessExecutor::retire(const std::string& name, std::uint64_t keep_version) {
  GilLock gil;
  forget(name, keep_version);
}

void InProcessExecutor::forget(const std::string& name, std::uint64_t keep_version) {
  auto it = loaded_.find(name);
  if (it == loaded_.end() || (keep_version != 0 && it->second.version == keep_version)) return;
  host_.unload_module(it->second.module_name);
  loaded_.erase(it);
  loaded_count_.store(loaded_.size(), std::memory_order_relaxed);
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
  me.python_thread_id = python.id();
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
        run_call(*task.call, me);
        sink_(std::move(task.call));
      } else {
        run_load(*task.load, me);
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
    interrupt_late_calls();
    lock.lock();
  }
}

void InProcessExecutor::interrupt_late_calls() {
  auto now = steady_ns();
  auto check = [&](Worker& worker) {
    auto serial = worker.running.load();
    if (serial == 0 || worker.interrupted.load() || now < worker.deadline_ns.load()) return;
    GilLock gil;
    // Holding the GIL, the worker cannot move to another call under us (it changes `running` only with the GIL).
    if (worker.running.load() != serial) return;
    PyThreadState_SetAsyncExc(worker.python_thread_id.load(), host_.timeout_error());
    worker.interrupted = true;
  };
  check(inline_worker_);
  for (auto& worker : workers_) check(*worker);
}

void InProcessExecutor::begin_call(Worker& me) {
  me.deadline_ns = steady_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.timeout).count();
  me.interrupted = false;
  me.running = serial_.fetch_add(1, std::memory_order_relaxed) + 1;
}

bool InProcessExecutor::end_call(Worker& me) {
  me.running = 0;
  bool interrupted = me.interrupted.load();
  // A Timeout raised after the call returned would surface in the next call: drop it.
  if (interrupted) PyThreadState_SetAsyncExc(me.python_thread_id.load(), nullptr);
  return interrupted;
}

PyObject* InProcessExecutor::find_function(const FunctionSpec& function, std::string& error) {
  auto it = loaded_.find(function.name);
  // A newer version than the call asked for means a re-upload landed while the call waited: run the newer one.
  if (it != loaded_.end() && it->second.version >= function.version) return it->second.main.ptr();
  return load_fresh(function, error);
}

PyObject* InProcessExecutor::load_fresh(const FunctionSpec& function, std::string& error) {
  Loaded fresh{function.version, function.module_name(), {}};
  auto it = loaded_.find(function.name);
  if (it != loaded_.end() && it->second.module_name == fresh.module_name) fresh.module_name += "_reload";
  try {
    fresh.main = host_.load_function(fresh.module_name, function.source.string(), function.site_dirs,
                                     function.staged_source.string());
  } catch (py::error_already_set& e) {
    error = host_.format_traceback(e);
    if (error.empty()) error = e.what();
    return nullptr;
  }
  if (it != loaded_.end()) host_.unload_module(it->second.module_name);
  auto& slot = loaded_[function.name];
  slot = std::move(fresh);
  loaded_count_.store(loaded_.size(), std::memory_order_relaxed);
  return slot.main.ptr();
}

void InProcessExecutor::run_load(LoadJob& job, Worker& me) {
  OutputBuffer output;
  output.limit = options_.output_limit;
  current_output = &output;
  begin_call(me);
  std::string error;
  load_fresh(*job.function, error);
  if (end_call(me) && !error.empty()) {
    error = "importing func.py took longer than the timeout (" + timeout_message(options_.timeout) + ")\n" + error;
  }
  current_output = nullptr;
  cap(error, options_.output_limit);
  job.done.set_value(std::move(error));
}

void InProcessExecutor::run_call(Call& call, Worker& me) {
  Invocation& record = call.record;
  record.function = call.function->name;
  record.request_id = std::move(call.request.request_id);
  record.args = std::move(call.request.args);
  record.kwargs = std::move(call.request.kwargs);

  host_.ensure_capture();
  OutputBuffer output;
  output.limit = options_.output_limit;
  current_output = &output;
  begin_call(me);
  record.time_start = Invocation::Clock::now();
  record.time_end = record.time_start;

  std::string error;
  PyObject* main = find_function(*call.function, error);
  if (main == nullptr) {
    end_call(me);
    current_output = nullptr;
    fail_record(record, "LoadError", "function could not be loaded: " + error);
    cap(record.error, options_.output_limit);
    record.output = output.take();
    return;
  }

  py::object args, kwargs;
  try {
    args = json_to_python(record.args);
    if (!PyList_Check(args.ptr())) throw Error(ErrorCode::invalid_input, "args must be a JSON array");
    args = py::reinterpret_steal<py::object>(PyList_AsTuple(args.ptr()));
    if (!record.kwargs.empty()) {
      kwargs = json_to_python(record.kwargs);
      if (!PyDict_Check(kwargs.ptr())) throw Error(ErrorCode::invalid_input, "kwargs must be a JSON object");
    }
  } catch (const Error& e) {
    end_call(me);
    current_output = nullptr;
    fail_record(record, "InvalidArguments", e.what());
    return;
  }

  record.time_start = Invocation::Clock::now();
  auto started = std::chrono::steady_clock::now();
  py::object result = py::reinterpret_steal<py::object>(PyObject_Call(main, args.ptr(), kwargs.ptr()));
  auto finished = std::chrono::steady_clock::now();
  record.time_end = Invocation::Clock::now();
  bool timed_out = end_call(me);
  current_output = nullptr;
  record.duration_ms = std::chrono::duration<double, std::milli>(finished - started).count();

  if (timed_out) {
    std::string traceback;
    if (!result) {
      py::error_already_set raised;
      traceback = host_.format_traceback(raised);
    }
    fail_record(record, "Timeout", timeout_message(options_.timeout));
    record.traceback = std::move(traceback);
  } else if (result) {
    if (!python_to_json(result.ptr(), record.result, error)) {
      record.result.clear();
      fail_record(record, "ResultNotSerializable", std::move(error));
    }
  } else {
    py::error_already_set raised;  // takes the exception, clearing the error indicator
    PyObject* value = raised.value().ptr();
    std::string_view type_name = value != nullptr ? Py_TYPE(value)->tp_name : "Exception";
    type_name = type_name.substr(type_name.rfind('.') + 1);  // "module.Class" for C types: keep "Class"
    std::string message;
    py::object text = py::reinterpret_steal<py::object>(PyObject_Str(value));
    if (text) {
      Py_ssize_t size = 0;
      const char* utf8 = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
      if (utf8 != nullptr) message.assign(utf8, static_cast<std::size_t>(size));
    }
    PyErr_Clear();
    fail_record(record, std::string(type_name), std::move(message));
    record.traceback = host_.format_traceback(raised);
    cap(record.error, options_.output_limit);
    cap(record.traceback, options_.output_limit);
  }
  record.output = output.take();
}

}  // namespace faas::runtime
