#include "runtime/python_host.hpp"

#include <pybind11/eval.h>

#include <mutex>

#include "faas/error.hpp"
#include "util/ids.hpp"

namespace py = pybind11;

namespace faas::runtime {

thread_local OutputBuffer* current_output = nullptr;
thread_local Invocation* current_invocation = nullptr;

void OutputBuffer::append(std::string_view data) {
  if (text.size() >= limit) {
    truncated = truncated || !data.empty();
    return;
  }
  auto room = limit - text.size();
  if (data.size() > room) {
    data = data.substr(0, room);
    truncated = true;
  }
  text.append(data);
}

std::string OutputBuffer::take() {
  if (truncated) text += "\n[output truncated]";
  truncated = false;
  return std::move(text);
}

namespace {

// Python helpers, compiled once into the module `_faas_host`.
constexpr const char* bootstrap_source = R"PY(
import importlib.machinery
import importlib.util
import site
import sys
import threading
import traceback


class Timeout(BaseException):
    """Raised inside a function that ran past its timeout."""


class CaptureStream:
    """sys.stdout/sys.stderr: a function's output goes to its own call's record, anything else passes through."""
    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, write, original):
        self.write = write          # a C function that knows which call, if any, this thread runs
        self._original = original

    def flush(self):
        if self._original is not None:
            self._original.flush()

    def isatty(self):
        return False

    def writable(self):
        return True

    def __getattr__(self, name):
        return getattr(self._original, name)


class StagedLoader(importlib.machinery.SourceFileLoader):
    """Imports code staged elsewhere as if it were already at `path`, so its tracebacks name the final file."""

    def __init__(self, fullname, path, staged):
        super().__init__(fullname, path)
        self._staged = staged

    def get_data(self, path):
        return super().get_data(self._staged if path == self.path else path)

    def path_stats(self, path):
        raise OSError("staged code has no bytecode cache")   # neither reads nor writes __pycache__

    def source_to_code(self, data, path, *, _optimize=-1):
        try:
            return super().source_to_code(data, path, _optimize=_optimize)
        except SyntaxError as e:
            # CPython fills in the offending line by reading `path`, which still holds the old version.
            lines = importlib.util.decode_source(data).splitlines()
            if e.lineno and 0 < e.lineno <= len(lines):
                e.text = lines[e.lineno - 1] + "\n"
            raise


_load_lock = threading.Lock()


def load(module_name, path, site_dirs, staged=None):
    # Loads may run on two executor threads at once (an import lets go of the GIL); each rearranges sys.path
    # around its import, so they take turns.
    with _load_lock:
        return _load(module_name, path, site_dirs, staged)


def _load(module_name, path, site_dirs, staged):
    before = list(sys.path)
    for directory in site_dirs:
        site.addsitedir(directory)      # also runs the env's .pth files
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before        # the function's env wins while it imports
    # A virtualenv may have been filled, or may have come to exist, since the import system last looked at its
    # directory (directory listings and missing paths are cached): look again.
    importlib.invalidate_caches()
    try:
        loader = StagedLoader(module_name, path, staged) if staged else None
        spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
    finally:
        # Keep the env reachable for imports made later inside main(), behind everything else.
        current = [p for p in sys.path if p not in added]
        sys.path[:] = current + [p for p in added if p not in current]
    main = getattr(module, "main", None)
    if not callable(main):
        sys.modules.pop(module_name, None)
        raise TypeError("func.py defines no callable main(*args)")
    return main


def unload(module_name):
    sys.modules.pop(module_name, None)


def format_traceback(exc):
    return "".join(traceback.format_exception(exc))
)PY";

// sys.stdout.write / sys.stderr.write. `self` is the original stream (or None).
PyObject* capture_write(PyObject* original, PyObject* text) {
  if (!PyUnicode_Check(text)) {
    PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s", Py_TYPE(text)->tp_name);
    return nullptr;
  }
  if (current_output == nullptr) {
    if (original == Py_None) return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(text));
    return PyObject_CallMethod(original, "write", "O", text);
  }
  Py_ssize_t size = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size);
  if (utf8 != nullptr) {
    current_output->append(std::string_view(utf8, static_cast<std::size_t>(size)));
  } else {  // lone surrogates: keep what can be shown
    PyErr_Clear();
    py::object bytes = py::reinterpret_steal<py::object>(PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace"));
    if (!bytes) return nullptr;
    current_output->append(std::string_view(PyBytes_AS_STRING(bytes.ptr()),
                                            static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.ptr()))));
  }
  return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(text));
}

PyMethodDef capture_write_def = {"write", capture_write, METH_O, "Write to the current invocation's output."};

// faas_context: what a function may ask about the call it runs. None outside a call (at import, say).
PyObject* text_or_none(const std::string& text) {
  if (text.empty()) Py_RETURN_NONE;
  return PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()));
}

// The running call, with a trace of its own begun if it came without one: asked for, it is about to be passed on.
Invocation* traced_call() {
  if (current_invocation != nullptr && current_invocation->trace_id.empty()) {
    current_invocation->trace_id = make_trace_id();
    current_invocation->span_id = make_span_id();
  }
  return current_invocation;
}

PyObject* context_traceparent(PyObject*, PyObject*) {
  auto* call = traced_call();
  return call ? text_or_none(call->traceparent()) : text_or_none({});
}
PyObject* context_trace_id(PyObject*, PyObject*) {
  auto* call = traced_call();
  return call ? text_or_none(call->trace_id) : text_or_none({});
}
PyObject* context_span_id(PyObject*, PyObject*) {
  auto* call = traced_call();
  return call ? text_or_none(call->span_id) : text_or_none({});
}
PyObject* context_invocation_id(PyObject*, PyObject*) {
  return current_invocation ? text_or_none(current_invocation->id) : text_or_none({});
}

PyMethodDef context_methods[] = {
    {"traceparent", context_traceparent, METH_NOARGS,
     "The W3C traceparent for calls this invocation makes: its trace id and its own span id."},
    {"trace_id", context_trace_id, METH_NOARGS, "The id of the trace this invocation belongs to."},
    {"span_id", context_span_id, METH_NOARGS, "This invocation's span id."},
    {"invocation_id", context_invocation_id, METH_NOARGS, "This invocation's record id."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef context_module = {PyModuleDef_HEAD_INIT, "faas_context",
                              "What a libfaas function may ask about the invocation it runs.", -1, context_methods,
                              nullptr, nullptr, nullptr, nullptr};

}  // namespace

PythonHost& PythonHost::get(const std::filesystem::path& program) {
  // Never destroyed: the interpreter outlives every Engine and is not finalised (extension modules and daemon
  // threads make re-initialisation unreliable).
  static PythonHost* host = new PythonHost(program);
  return *host;
}

PythonHost::PythonHost(const std::filesystem::path& program) {
  if (!Py_IsInitialized()) {
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);  // ignores PYTHON* variables, no user site, no cwd on sys.path
    config.install_signal_handlers = 0;    // the server owns SIGINT/SIGTERM
    config.site_import = 0;                // keep the system's dist-packages from shadowing function envs
    PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, program.c_str());
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
      throw Error(ErrorCode::internal, std::string("cannot initialise Python: ") +
                                           (status.err_msg != nullptr ? status.err_msg : "unknown error"));
    }
    owns_interpreter_ = true;
    bootstrap();
    PyEval_SaveThread();  // the initialising thread lets go of the GIL; workers take it as they need it
  } else {
    GilLock gil;
    bootstrap();
  }
}

std::string site_packages_suffix() {
  return "lib/python" + std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION) + "/site-packages";
}

void PythonHost::bootstrap() {
  try {
    py::module_ module = py::module_::import("types").attr("ModuleType")("_faas_host");
    py::dict globals = module.attr("__dict__");
    globals["__builtins__"] = py::module_::import("builtins");
    py::exec(bootstrap_source, globals);
    py::module_::import("sys").attr("modules")["_faas_host"] = module;
    load_ = globals["load"];
    unload_ = globals["unload"];
    format_traceback_ = globals["format_traceback"];
    timeout_error_ = globals["Timeout"];

    // Functions `import faas_context` to read their call's trace context (docs/functions.md#traces).
    py::object context = py::reinterpret_steal<py::object>(PyModule_Create(&context_module));
    if (!context) throw py::error_already_set();
    py::module_::import("sys").attr("modules")["faas_context"] = context;

    capture_stream_ = globals["CaptureStream"];
    install_capture("stdout");
    install_capture("stderr");
  } catch (py::error_already_set& e) {
    throw Error(ErrorCode::internal, std::string("cannot set up the Python host: ") + e.what());
  }
}

void PythonHost::install_capture(const char* stream_name) {
  PyObject* current = PySys_GetObject(stream_name);  // borrowed; null when unset
  py::object original = current != nullptr ? py::reinterpret_borrow<py::object>(current) : py::none();
  if (Py_TYPE(original.ptr()) == reinterpret_cast<PyTypeObject*>(capture_stream_.ptr())) return;
  py::object write = py::reinterpret_steal<py::object>(PyCFunction_New(&capture_write_def, original.ptr()));
  if (!write) throw py::error_already_set();
  py::object stream = capture_stream_(write, original);
  if (PySys_SetObject(stream_name, stream.ptr()) != 0) throw py::error_already_set();
}

void PythonHost::ensure_capture() {
  auto ours = reinterpret_cast<PyTypeObject*>(capture_stream_.ptr());
  for (const char* name : {"stdout", "stderr"}) {
    PyObject* current = PySys_GetObject(name);
    if (current != nullptr && Py_TYPE(current) == ours) continue;
    try {
      install_capture(name);
    } catch (py::error_already_set&) {
      // Output of this call then goes where sys.stdout points; the call itself is unaffected.
    }
  }
}

py::object PythonHost::load_function(const std::string& module_name, const std::string& path,
                                     const std::vector<std::string>& site_dirs, const std::string& staged_path) {
  py::list dirs;
  for (const auto& dir : site_dirs) dirs.append(dir);
  return load_(module_name, path, dirs, staged_path.empty() ? py::object(py::none()) : py::str(staged_path));
}

void PythonHost::unload_module(const std::string& module_name) { unload_(module_name); }

void PythonHost::set_environment(const std::vector<std::string>& variables) {
  py::object environ = py::module_::import("os").attr("environ");
  for (const auto& variable : variables) {
    auto equals = variable.find('=');
    if (equals == std::string::npos) continue;
    environ[py::str(variable.substr(0, equals))] = py::str(variable.substr(equals + 1));
  }
}

std::string PythonHost::format_traceback(py::error_already_set& raised) {
  PyObject* exception = raised.value().ptr();
  if (exception == nullptr) return {};
  // pybind11 2.10 keeps the traceback beside the exception instead of on it.
  if (raised.trace() && PyExceptionInstance_Check(exception)) PyException_SetTraceback(exception, raised.trace().ptr());
  try {
    return format_traceback_(py::handle(exception)).cast<std::string>();
  } catch (py::error_already_set&) {
    return {};
  }
}

ThreadState::ThreadState() : state_(PyThreadState_New(PyInterpreterState_Main())) {
  if (state_ == nullptr) throw Error(ErrorCode::internal, "cannot create a Python thread state");
}

ThreadState::~ThreadState() {
  PyEval_RestoreThread(state_);
  PyThreadState_Clear(state_);
  PyThreadState_DeleteCurrent();
}

}  // namespace faas::runtime
