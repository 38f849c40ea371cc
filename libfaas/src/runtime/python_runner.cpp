#include "runtime/python_runner.hpp"

#include "faas/error.hpp"
#include "runtime/convert.hpp"

namespace py = pybind11;

namespace faas::runtime {

namespace {

constexpr auto max_idle_period = std::chrono::seconds(1);

void cap(std::string& text, std::size_t limit) {
  if (text.size() > limit) {
    text.resize(limit);
    text += "\n[truncated]";
  }
}

// What a thread is doing while it runs a call or an import: its output goes to `output`, its deadline is in
// `slot`, the call it runs (for faas_context) is `call`, all undone on every way out.
class CallScope {
 public:
  CallScope(CallSlot& slot, OutputBuffer& output, std::chrono::milliseconds timeout, Invocation* call = nullptr)
      : slot_(slot) {
    current_output = &output;
    current_invocation = call;
    slot_.begin(timeout);
  }
  ~CallScope() { finish(); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

  // Ends the scope early; true when the watchdog interrupted the call.
  bool finish() {
    if (!open_) return interrupted_;
    open_ = false;
    interrupted_ = slot_.end();
    current_output = nullptr;
    current_invocation = nullptr;
    return interrupted_;
  }

 private:
  CallSlot& slot_;
  bool open_ = true;
  bool interrupted_ = false;
};

std::atomic<std::uint64_t> next_serial{1};

}  // namespace

std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void CallSlot::begin(std::chrono::milliseconds timeout) {
  python_thread_id_ = PyThreadState_Get()->thread_id;
  deadline_ns_ = steady_now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  interrupted_ = false;
  running_ = next_serial.fetch_add(1, std::memory_order_relaxed);
}

bool CallSlot::end() {
  running_ = 0;
  bool interrupted = interrupted_.load();
  // A Timeout raised after the call returned would surface in the next call: drop it.
  if (interrupted) PyThreadState_SetAsyncExc(python_thread_id_.load(), nullptr);
  return interrupted;
}

void CallSlot::interrupt_if_late(PythonHost& host, std::int64_t now_ns) {
  auto serial = running_.load();
  if (serial == 0 || interrupted_.load() || now_ns < deadline_ns_.load()) return;
  GilLock gil;
  // Holding the GIL, the runner cannot move to another call under us (it changes `running_` only with the GIL).
  if (running_.load() != serial) return;
  PyThreadState_SetAsyncExc(python_thread_id_.load(), host.timeout_error());
  interrupted_ = true;
}

SlotWatchdog::SlotWatchdog(PythonHost& host, CallSlot& slot, std::chrono::milliseconds timeout)
    : host_(host),
      slot_(slot),
      idle_period_(std::clamp<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(1), max_idle_period)),
      thread_([this] { watch(); }) {}

SlotWatchdog::~SlotWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

void SlotWatchdog::watch() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    // A call that starts while we sleep has a deadline at least idle_period_ away, so we wake before it.
    auto until = std::chrono::steady_clock::now() + idle_period_;
    if (slot_.busy()) {
      auto deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(slot_.deadline_ns()));
      until = std::min(until, deadline + std::chrono::milliseconds(1));
    }
    stop_cv_.wait_until(lock, until, [&] { return stop_; });
    if (stop_) break;
    lock.unlock();
    slot_.interrupt_if_late(host_, steady_now_ns());
    lock.lock();
  }
}

PythonRunner::PythonRunner(PythonHost& host, RunnerLimits limits) : host_(host), limits_(limits) {}

void PythonRunner::load(const FunctionSpec& function, CallSlot& slot) {
  OutputBuffer output;  // what the import prints is not kept
  output.limit = limits_.output_limit;
  std::string error;
  bool timed_out;
  {
    CallScope scope(slot, output, function.timeout);
    import_fresh(function, error);
    timed_out = scope.finish();
  }
  if (error.empty()) return;
  if (timed_out) error = "importing func.py took longer than the timeout (" + timeout_message(function.timeout) + ")\n" + error;
  cap(error, limits_.output_limit);
  throw Error(ErrorCode::build_failed, error);
}

void PythonRunner::retire(const std::string& name, std::uint64_t keep_revision) {
  auto it = loaded_.find(name);
  if (it == loaded_.end() || (keep_revision != 0 && it->second.revision == keep_revision)) return;
  host_.unload_module(it->second.module_name);
  loaded_.erase(it);
  loaded_count_.store(loaded_.size(), std::memory_order_relaxed);
}

void PythonRunner::retire_all() {
  for (auto& [name, loaded] : loaded_) host_.unload_module(loaded.module_name);
  loaded_.clear();
  loaded_count_.store(0, std::memory_order_relaxed);
}

const PythonRunner::Loaded* PythonRunner::find_main(const FunctionSpec& function, std::string& error) {
  auto it = loaded_.find(function.name);
  // A newer revision than the call asked for means a re-upload landed while the call waited: run the newer one.
  if (it != loaded_.end() && it->second.revision >= function.revision) return &it->second;
  return import_fresh(function, error);
}

const PythonRunner::Loaded* PythonRunner::import_fresh(const FunctionSpec& function, std::string& error) {
  Loaded fresh{function.revision, function.version, function.module_name(), {}};
  if (auto it = loaded_.find(function.name); it != loaded_.end() && it->second.module_name == fresh.module_name) {
    fresh.module_name += "_reload";
  }
  try {
    fresh.main = host_.load_function(fresh.module_name, function.source.string(), function.site_dirs,
                                     function.staged_source.string());
  } catch (py::error_already_set& e) {
    error = host_.format_traceback(e);
    if (error.empty()) error = e.what();
    return nullptr;
  }
  // Look again: an import lets go of the GIL, and another thread may have loaded this function meanwhile.
  auto it = loaded_.find(function.name);
  if (it != loaded_.end()) {
    if (it->second.revision > fresh.revision) {
      host_.unload_module(fresh.module_name);
      return &it->second;
    }
    host_.unload_module(it->second.module_name);
  }
  auto& slot = loaded_[function.name];
  slot = std::move(fresh);
  loaded_count_.store(loaded_.size(), std::memory_order_relaxed);
  return &slot;
}

void PythonRunner::run(const FunctionSpec& function, Invocation& record, CallSlot& slot, const ChunkSink& on_chunk,
                       std::chrono::milliseconds timeout) {
  timeout = call_timeout(function, timeout);
  host_.ensure_capture();
  OutputBuffer output;
  output.limit = limits_.output_limit;
  record.time_start = record.time_end = Invocation::Clock::now();
  py::object result;
  bool called = false, timed_out = false;
  {
    CallScope scope(slot, output, timeout, &record);
    std::string error;
    const Loaded* loaded = find_main(function, error);
    if (loaded == nullptr) {
      cap(error, limits_.output_limit);
      record.fail("LoadError", "function could not be loaded: " + error);
    } else {
      record.version = loaded->version;
      called = call_main(loaded->main.ptr(), record, result, on_chunk);
    }
    timed_out = scope.finish();
  }
  if (called && timed_out) {
    record.fail("Timeout", timeout_message(timeout));  // keeps the traceback of where it was stopped
  } else if (result) {
    std::string error;
    bool too_large = false;
    try {
      if (!python_to_json(result.ptr(), record.result, error, limits_.result_limit, &too_large)) {
        record.fail(too_large ? "ResultTooLarge" : "ResultNotSerializable", std::move(error));
      }
    } catch (const std::bad_alloc&) {  // the process's memory cap, reached while writing the result
      std::string().swap(record.result);
      record.fail("MemoryError", "no memory left to write the result as JSON");
    }
  }
  record.output = output.take();
  apply_limits(function, record);
}

bool PythonRunner::stream(PyObject* iterator, Invocation& record, const ChunkSink& on_chunk) {
  record.result = "[";
  std::string chunk, error;
  while (PyObject* item = PyIter_Next(iterator)) {
    auto held = py::reinterpret_steal<py::object>(item);
    chunk.clear();
    if (!python_to_json(item, chunk, error, limits_.result_limit)) {
      record.fail("ResultNotSerializable", "chunk " + std::to_string(record.chunks + 1) + ": " + error);
      return true;  // not an exception: the record says what went wrong
    }
    ++record.chunks;
    if (on_chunk) on_chunk(chunk);
    if (record.chunks_truncated || record.result.size() + chunk.size() + 2 > limits_.output_limit) {
      record.chunks_truncated = true;
    } else {
      if (record.chunks > 1) record.result += ',';
      record.result += chunk;
    }
  }
  record.result += ']';
  return !PyErr_Occurred();
}

bool PythonRunner::call_main(PyObject* main, Invocation& record, py::object& result, const ChunkSink& on_chunk) {
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
    record.fail("InvalidArguments", e.what());
    return false;
  }

  record.time_start = Invocation::Clock::now();
  auto started = std::chrono::steady_clock::now();
  result = py::reinterpret_steal<py::object>(PyObject_Call(main, args.ptr(), kwargs.ptr()));
  if (result && PyIter_Check(result.ptr())) {  // a generator, or another iterator: its items are chunks
    bool drained = stream(result.ptr(), record, on_chunk);
    result = py::object();  // record.result holds them already
    if (drained) {
      record.time_end = Invocation::Clock::now();
      record.duration_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      return true;
    }
  }
  auto finished = std::chrono::steady_clock::now();
  record.time_end = Invocation::Clock::now();
  record.duration_ms = std::chrono::duration<double, std::milli>(finished - started).count();
  if (result) return true;

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
  record.fail(std::string(type_name), std::move(message));
  record.traceback = host_.format_traceback(raised);
  cap(record.error, limits_.output_limit);
  cap(record.traceback, limits_.output_limit);
  return true;
}

void PythonRunner::apply_limits(const FunctionSpec& function, Invocation& record) const {
  if (record.error_type == "MemoryError" && limits_.memory_limited && function.memory_limit_mb > 0) {
    record.fail("MemoryLimit", "the function exceeded the worker's memory limit of " +
                                   std::to_string(function.memory_limit_mb) + " MB" +
                                   (record.error.empty() ? "" : ": " + record.error));
  }
}

}  // namespace faas::runtime
