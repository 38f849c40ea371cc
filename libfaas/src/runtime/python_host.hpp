// The process's one CPython interpreter: initialised once (or adopted when libfaas runs inside Python), plus the
// few Python helpers libfaas needs. This is the only global state in libfaas.
//
// GIL rules: methods marked "GIL" must be called with the GIL held. Python objects must die while the GIL is
// held (a py::object released after the GIL is dropped crashes), so keep them inside a GIL scope.
#pragma once

#include <Python.h>

#include <filesystem>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

#include "faas/invocation.hpp"

namespace faas::runtime {

// Where a thread's printed output goes while it runs a function; nullptr outside a call (output then goes to
// the process's real stdout/stderr).
struct OutputBuffer {
  std::string text;
  std::size_t limit = 64 * 1024;
  bool truncated = false;
  void append(std::string_view data);
  std::string take();  // the text, with a marker when it was cut
};
extern thread_local OutputBuffer* current_output;
// The invocation a thread runs, for the module `faas_context` functions import (which gives it a trace of its own
// when it has none, at the first question); nullptr outside a call.
extern thread_local Invocation* current_invocation;

// "lib/python3.11/site-packages": where a virtualenv for the Python libfaas was built against keeps its packages.
// Needs no interpreter, so a server that runs functions in worker processes never starts one.
std::string site_packages_suffix();

// Hidden like pybind11's own types, which it holds.
class __attribute__((visibility("hidden"))) PythonHost {
 public:
  // Initialises the interpreter on first use (thread-safe). `program` becomes sys.executable.
  static PythonHost& get(const std::filesystem::path& program);

  bool owns_interpreter() const noexcept { return owns_interpreter_; }

  // GIL. Imports func.py at `path` under `module_name`, with `site_dirs` first on sys.path, and returns its
  // `main`. With `staged_path`, the source is read from there instead (the upload is not in place yet) but the
  // module still names `path`. Throws pybind11::error_already_set with the Python exception.
  pybind11::object load_function(const std::string& module_name, const std::string& path,
                                 const std::vector<std::string>& site_dirs, const std::string& staged_path = {});
  // GIL. Removes a module loaded by load_function from sys.modules.
  void unload_module(const std::string& module_name);
  // GIL. Sets "NAME=value" variables in os.environ (and so in the process's environment). For faas-worker, whose
  // process serves one function: an interpreter shared by several functions has one environment for all.
  void set_environment(const std::vector<std::string>& variables);
  // GIL. The exception class raised in a function that runs past its timeout (a BaseException, so a plain
  // `except Exception` in user code does not swallow it).
  PyObject* timeout_error() const { return timeout_error_.ptr(); }
  // GIL. Puts the capturing streams back on sys.stdout/sys.stderr when something replaced them (a function that
  // assigns sys.stdout, or the program libfaas runs inside: pytest, contextlib.redirect_stdout), so a call's
  // output still reaches its record. Costs two attribute reads when nothing changed.
  void ensure_capture();
  // GIL. "Traceback (most recent call last): ..." for a caught Python exception.
  std::string format_traceback(pybind11::error_already_set& raised);

 private:
  explicit PythonHost(const std::filesystem::path& program);
  void bootstrap();
  void install_capture(const char* stream_name);  // GIL; throws pybind11::error_already_set

  bool owns_interpreter_ = false;
  pybind11::object load_;
  pybind11::object unload_;
  pybind11::object format_traceback_;
  pybind11::object timeout_error_;
  pybind11::object capture_stream_;   // the CaptureStream class
};

// Takes the GIL for the current thread for a rare, short operation (PyGILState). Executor threads use
// ThreadState instead.
class GilLock {
 public:
  GilLock() : state_(PyGILState_Ensure()) {}
  ~GilLock() { PyGILState_Release(state_); }
  GilLock(const GilLock&) = delete;
  GilLock& operator=(const GilLock&) = delete;

 private:
  PyGILState_STATE state_;
};

// A Python thread state owned by one long-lived worker thread, so taking the GIL costs no allocation and
// threading.local data in user code survives between calls.
class ThreadState {
 public:
  ThreadState();   // call on the worker thread; does not take the GIL
  ~ThreadState();  // call on the same thread, GIL not held
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;

  void acquire() { PyEval_RestoreThread(state_); }
  void release() { PyEval_SaveThread(); }
  unsigned long id() const noexcept { return state_->thread_id; }

 private:
  PyThreadState* state_;
};

}  // namespace faas::runtime
