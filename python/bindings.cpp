// libfaas._core: the engine for Python programs (pybind11). A thin adapter like the servers: Python values to the
// engine's JSON texts and back, the engine's typed errors to Python exceptions.
//
// GIL rules: the engine runs functions on its own threads, which take the GIL, and waits for them; so every engine
// call here runs with the GIL released, and every Python object is made or dropped before release or after
// re-acquire. The engine adopts the running interpreter (it never initialises a second one).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "faas/engine.hpp"
#include "runtime/convert.hpp"

namespace py = pybind11;

namespace {

using faas::ErrorCode;

// The exception classes, made once at import. Each code's class derives from libfaas.Error and, where one fits,
// from the built-in exception a Python caller would already catch.
struct Exceptions {
  py::object base, not_found, invalid_name, invalid_input, build_failed, overloaded, shutting_down, store_unavailable;

  py::handle for_code(ErrorCode code) const {
    switch (code) {
      case ErrorCode::not_found: return not_found;
      case ErrorCode::invalid_name: return invalid_name;
      case ErrorCode::invalid_input: return invalid_input;
      case ErrorCode::build_failed: return build_failed;
      case ErrorCode::overloaded: return overloaded;
      case ErrorCode::shutting_down: return shutting_down;
      case ErrorCode::store_unavailable: return store_unavailable;
      case ErrorCode::internal: break;
    }
    return base;
  }
};
Exceptions* exceptions = nullptr;  // set at import; lives as long as the module (never freed: see python_host)

py::object make_exception(py::module_& module, const char* name, py::tuple bases, const char* doc) {
  std::string qualified = std::string("libfaas.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  py::object result = py::reinterpret_steal<py::object>(type);
  module.add_object(name, result);
  return result;
}

py::object json_text_to_python(std::string_view text) { return faas::runtime::json_to_python(text); }

template <class T>
py::object to_python(const T& value) {
  nlohmann::json json = value;
  return json_text_to_python(json.dump());
}

// Python arguments as the JSON text the engine takes. Raises TypeError for what JSON cannot carry.
std::string arguments_text(py::handle value, const char* what) {
  std::string text, error;
  if (!faas::runtime::python_to_json(value.ptr(), text, error)) {
    throw py::type_error(std::string(what) + " cannot be sent as JSON: " + error);
  }
  return text;
}

// One libfaas.Engine. Calls hold a reference to the engine while the GIL is released, so close() from another
// thread stops it (calls then fail with ShuttingDown) but never frees it under a running call.
class PyEngine {
 public:
  explicit PyEngine(faas::EngineConfig config) {
    py::gil_scoped_release nogil;
    engine_ = std::make_shared<faas::Engine>(std::move(config));
    config_ = engine_->config();
    std::lock_guard lock(open_mutex());
    open_engines().insert(this);
  }

  ~PyEngine() { close(); }

  PyEngine(const PyEngine&) = delete;
  PyEngine& operator=(const PyEngine&) = delete;

  // Stops taking calls, waits for running ones, commits every record. Idempotent.
  void close() {
    {
      std::lock_guard lock(open_mutex());
      open_engines().erase(this);
    }
    std::shared_ptr<faas::Engine> engine = std::exchange(engine_, nullptr);
    if (!engine) return;
    py::gil_scoped_release nogil;
    engine->shutdown();
    engine.reset();  // the last reference (unless a call still holds one) frees the engine without the GIL
  }

  bool closed() const noexcept { return engine_ == nullptr; }

  // Runs `body(engine)` with the GIL released; its result must hold no Python object.
  template <class Body>
  auto without_gil(Body body) {
    std::shared_ptr<faas::Engine> engine = engine_;
    if (!engine) throw faas::Error(ErrorCode::shutting_down, "the engine is closed");
    py::gil_scoped_release nogil;
    return body(*engine);
  }

  const faas::EngineConfig& config() const noexcept { return config_; }

  // Closes every engine still open when the interpreter exits, while the engine's threads can still take the GIL.
  static void close_all() {
    for (;;) {
      PyEngine* engine = nullptr;
      {
        std::lock_guard lock(open_mutex());
        if (open_engines().empty()) return;
        engine = *open_engines().begin();
      }
      engine->close();
    }
  }

 private:
  static std::mutex& open_mutex() {
    static std::mutex mutex;
    return mutex;
  }
  static std::set<PyEngine*>& open_engines() {
    static std::set<PyEngine*> engines;
    return engines;
  }

  std::shared_ptr<faas::Engine> engine_;
  faas::EngineConfig config_;
};

std::chrono::milliseconds seconds_to_ms(double seconds, const char* what) {
  if (!std::isfinite(seconds) || seconds <= 0 || seconds > 86400.0 * 365) {
    throw py::value_error(std::string(what) + " must be a positive number of seconds");
  }
  return std::chrono::milliseconds(std::max<long long>(1, std::llround(seconds * 1000)));
}

std::unique_ptr<PyEngine> make_engine(const std::string& data_dir, const std::string& isolation, double timeout,
                                      const std::string& python, unsigned max_concurrency, std::size_t max_queue,
                                      std::size_t log_retention, bool sandbox, const std::string& store,
                                      const std::string& node_id) {
  faas::EngineConfig config;
  config.data_dir = data_dir;
  config.store = store;
  config.node_id = node_id;
  config.isolation = faas::parse_isolation(isolation);
  config.timeout = seconds_to_ms(timeout, "timeout");
  config.python = python;
  if (max_concurrency == 0) throw py::value_error("max_concurrency must be at least 1");
  config.max_concurrency = max_concurrency;
  config.max_queue = max_queue;
  config.log_retention = log_retention;
  config.workers.sandbox = sandbox;
  return std::make_unique<PyEngine>(std::move(config));
}

std::string code_text(py::handle code) {
  if (py::isinstance<py::bytes>(code)) return code.cast<std::string>();
  if (py::isinstance<py::str>(code)) return code.cast<std::string>();
  throw py::type_error("code must be str or bytes");
}

py::object upload(PyEngine& self, const std::string& name, py::handle code, std::optional<std::string> requirements,
                  py::object settings) {
  std::string source = code_text(code);
  nlohmann::json patch;  // null: the function keeps its settings
  if (!settings.is_none()) {
    if (!py::isinstance<py::dict>(settings)) throw py::type_error("settings must be a dict");
    patch = nlohmann::json::parse(arguments_text(settings, "settings"));
  }
  faas::FunctionInfo info = self.without_gil([&](faas::Engine& engine) {
    return engine.upload(name, source, requirements ? std::optional<std::string_view>(*requirements) : std::nullopt,
                         patch);
  });
  return to_python(info);
}

// The request of invoke() and stream(), from their Python arguments.
faas::InvokeRequest invoke_request(const std::string& name, const py::object& args, const py::object& kwargs,
                                   std::optional<std::string> request_id, std::optional<std::uint64_t> version) {
  faas::InvokeRequest request;
  request.function = name;
  if (version) {
    if (*version == 0) throw py::value_error("version must be a positive integer");
    request.version = *version;
  }
  if (!args.is_none()) {
    if (!py::isinstance<py::list>(args) && !py::isinstance<py::tuple>(args)) {
      throw py::type_error("args must be a list or a tuple");
    }
    request.args = arguments_text(args, "args");
  }
  if (!kwargs.is_none()) {
    if (!py::isinstance<py::dict>(kwargs)) throw py::type_error("kwargs must be a dict");
    request.kwargs = arguments_text(kwargs, "kwargs");
  }
  if (request_id) request.request_id = std::move(*request_id);
  return request;
}

py::object invoke(PyEngine& self, const std::string& name, py::object args, py::object kwargs,
                  std::optional<std::string> request_id, std::optional<std::uint64_t> version) {
  auto request = invoke_request(name, args, kwargs, std::move(request_id), version);
  std::string record =
      self.without_gil([&](faas::Engine& engine) { return engine.invoke(std::move(request)).json; });
  return json_text_to_python(record);
}

// Engine.stream(): an iterator over the chunks of a streaming function as it yields them; its record is `record`
// once the iterator is exhausted (a function that returns a value yields nothing, and its record is there).
class PyChunks {
 public:
  PyChunks(PyEngine& engine, faas::InvokeRequest request) : state_(std::make_shared<State>()) {
    request.on_chunk = [state = state_](std::string_view chunk) {
      std::lock_guard lock(state->mutex);
      state->chunks.emplace_back(chunk);
      state->changed.notify_all();
    };
    engine.without_gil([&](faas::Engine& e) {
      e.invoke_async(std::move(request), [state = state_](faas::Outcome<faas::InvocationResult> outcome) {
        std::lock_guard lock(state->mutex);
        if (outcome.ok()) {
          state->record = std::move(outcome.value().json);
        } else {
          state->error = outcome.error();
        }
        state->changed.notify_all();
      });
    });
  }

  py::object next() {
    std::unique_lock lock(state_->mutex);
    while (state_->chunks.empty() && !state_->record && !state_->error) {
      lock.unlock();
      {
        py::gil_scoped_release nogil;
        std::unique_lock wait_lock(state_->mutex);
        state_->changed.wait_for(wait_lock, std::chrono::milliseconds(200), [&] {
          return !state_->chunks.empty() || state_->record || state_->error;
        });
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      lock.lock();
    }
    if (!state_->chunks.empty()) {
      auto chunk = std::move(state_->chunks.front());
      state_->chunks.pop_front();
      lock.unlock();
      return json_text_to_python(chunk);
    }
    if (state_->error) throw *state_->error;
    if (record_.is_none()) record_ = json_text_to_python(*state_->record);
    throw py::stop_iteration();
  }

  py::object record() const { return record_; }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::string> chunks;
    std::optional<std::string> record;
    std::optional<faas::Error> error;
  };
  std::shared_ptr<State> state_;
  py::object record_ = py::none();
};

// settings(name) reads a function's settings; settings(name, timeout=5, env={...}) changes them first.
py::object settings(PyEngine& self, const std::string& name, const py::kwargs& changes) {
  py::dict patch;
  for (auto [key, value] : changes) {
    std::string field = key.cast<std::string>();
    patch[py::str(field == "is_public" ? "public" : field)] = value;  // `public` is a keyword in Python calls
  }
  nlohmann::json parsed;
  if (!changes.empty()) parsed = nlohmann::json::parse(arguments_text(patch, "settings"));
  std::string view = self.without_gil([&](faas::Engine& engine) {
    auto current = changes.empty() ? engine.settings(name) : engine.update_settings(name, parsed);
    return faas::settings_view(current, engine.config()).dump();
  });
  return json_text_to_python(view);
}

py::list logs(PyEngine& self, const std::string& name, std::size_t limit) {
  std::vector<std::string> records =
      self.without_gil([&](faas::Engine& engine) { return engine.logs(name, limit); });
  py::list out;
  for (const auto& record : records) out.append(json_text_to_python(record));
  return out;
}

// Engine.follow(): an iterator over records as they commit. One that fell behind follows again after the last
// record it gave, so the engine's replay fills the gap and Python never sees the drop.
class PyFollower {
 public:
  PyFollower(PyEngine& engine, faas::FollowOptions options) : engine_(engine), options_(std::move(options)) {
    follower_ = engine_.without_gil([&](faas::Engine& e) { return e.follow(options_); });
  }

  py::object next() {
    while (waiting_.empty()) {
      if (!follower_ || engine_.closed()) throw py::stop_iteration();  // closed, or its engine is
      {
        py::gil_scoped_release nogil;
        follower_->wait(std::chrono::milliseconds(200));
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // Ctrl-C while waiting
      for (auto& record : follower_->take()) waiting_.push_back(std::move(record));
      if (waiting_.empty() && follower_->dropped()) {
        options_.after = last_id_;
        follower_ = engine_.without_gil([&](faas::Engine& e) { return e.follow(options_); });
      }
    }
    auto record = std::move(waiting_.front());
    waiting_.pop_front();
    last_id_ = record->id;
    return json_text_to_python(record->json);
  }

  void close() {
    follower_.reset();
    waiting_.clear();
  }

 private:
  PyEngine& engine_;  // kept alive by the Python object (keep_alive in the binding)
  faas::FollowOptions options_;
  std::shared_ptr<faas::RecordFollower> follower_;
  std::deque<std::shared_ptr<const faas::FollowedRecord>> waiting_;
  std::string last_id_;
};

py::list list_functions(PyEngine& self) {
  std::vector<faas::FunctionInfo> functions = self.without_gil([](faas::Engine& engine) { return engine.list(); });
  py::list out;
  for (const auto& info : functions) out.append(to_python(info));
  return out;
}

constexpr const char* engine_doc = R"doc(A libfaas engine on one data directory.

Engine(data_dir="faas-data", isolation="inprocess", timeout=30.0, python="/usr/bin/python3",
       *, max_concurrency=8, max_queue=4096, log_retention=10000, sandbox=True, store="sqlite", node_id="")

Functions run in this Python interpreter (isolation="inprocess"), on the engine's threads; every method
releases the GIL while it waits, so Python threads may call invoke() in parallel. Records are committed to
<data_dir>/faas.db before invoke() returns. Several engines and servers may share one data dir. With
store="postgresql://user@host:port/database", functions and records live in PostgreSQL instead, shared with
every server of a cluster (docs/scaling.md); the data dir then only caches code and virtualenvs.

Use it as a context manager, or call close() when done:

    with libfaas.Engine(data_dir="faas-data") as engine:
        engine.upload("add", "def main(a, b):\n    return a + b\n")
        engine.invoke("add", [1, 2])["result"]      # 3

Errors raise libfaas.Error subclasses: FunctionNotFound, InvalidName, InvalidInput, BuildError,
Overloaded, ShuttingDown, StoreUnavailable.)doc";

}  // namespace

PYBIND11_MODULE(_core, module) {
  module.doc() = "libfaas: a Functions-as-a-Service engine embedding CPython (the compiled core).";

  exceptions = new Exceptions();
  py::tuple no_bases = py::make_tuple(py::handle(PyExc_Exception));
  exceptions->base = make_exception(module, "Error", no_bases, "A libfaas engine error (base class of the others).");
  auto with = [&](PyObject* builtin) { return py::make_tuple(exceptions->base, py::handle(builtin)); };
  exceptions->not_found =
      make_exception(module, "FunctionNotFound", with(PyExc_LookupError), "No function of that name.");
  exceptions->invalid_name = make_exception(module, "InvalidName", with(PyExc_ValueError),
                                            "A function name outside ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$.");
  exceptions->invalid_input =
      make_exception(module, "InvalidInput", with(PyExc_ValueError), "Malformed arguments, code or options.");
  exceptions->build_failed = make_exception(module, "BuildError", py::make_tuple(exceptions->base),
                                            "The code does not import, has no callable main, or pip failed; the "
                                            "message holds the traceback or pip's output.");
  exceptions->overloaded = make_exception(module, "Overloaded", py::make_tuple(exceptions->base),
                                          "The invocation queue is full; retry later.");
  exceptions->shutting_down =
      make_exception(module, "ShuttingDown", py::make_tuple(exceptions->base), "The engine is closed or closing.");
  exceptions->store_unavailable = make_exception(
      module, "StoreUnavailable", with(PyExc_OSError),
      "The data dir takes no writes (disk full, I/O error, read-only); nothing was recorded. Retry later.");

  py::register_exception_translator([](std::exception_ptr raised) {
    try {
      if (raised) std::rethrow_exception(raised);
    } catch (const faas::Error& e) {
      PyErr_SetString(exceptions->for_code(e.code()).ptr(), e.what());
    }
  });

  py::class_<PyChunks>(module, "Chunks", "A streaming call's chunks as they come (Engine.stream); then .record.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &PyChunks::next)
      .def_property_readonly("record", &PyChunks::record);

  py::class_<PyFollower>(module, "Follower", "Records as they commit (Engine.follow); close() stops it.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &PyFollower::next)
      .def("close", &PyFollower::close);

  py::class_<PyEngine>(module, "Engine", engine_doc)
      .def(py::init(&make_engine), py::arg("data_dir") = "faas-data", py::arg("isolation") = "inprocess",
           py::arg("timeout") = 30.0, py::arg("python") = "/usr/bin/python3", py::kw_only(),
           py::arg("max_concurrency") = 8, py::arg("max_queue") = 4096, py::arg("log_retention") = 10000,
           py::arg("sandbox") = true, py::arg("store") = "sqlite", py::arg("node_id") = "",
           "Opens (or creates) the data dir and its database. timeout is per invocation, in seconds; python is "
           "the interpreter that builds virtualenvs for requirements; sandbox confines each worker under "
           "isolation='process' (docs/security.md); store is 'sqlite' or a PostgreSQL URI; node_id names this "
           "engine among those sharing the store (default: host name and process id).")
      .def("run_schedules", [](PyEngine& self, double when) {
            auto minute = std::chrono::system_clock::time_point(
                std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(when)));
            return self.without_gil([&](faas::Engine& engine) { return engine.run_schedules(minute); });
          }, py::arg("when"),
          "Fires the schedules due in the minute holding `when` (seconds since the epoch, read in local time), "
          "each tick once, and returns the ids of the invocations started. The engine does this itself at every "
          "minute; call it to drive schedules with a clock of your own.")
      .def("settings", &settings, py::arg("name"),
           "A function's settings as a dict (effective values, 'defaults' naming those that follow the server, "
           "secrets by name only). Keyword arguments change them first, as a JSON merge patch: "
           "settings('f', timeout=5, env={'MODE': 'fast'}, secrets={'TOKEN': 't'}, is_public=True); None "
           "returns a setting to the server's default. Raises FunctionNotFound or InvalidInput.")
      .def("upload", &upload, py::arg("name"), py::arg("code"), py::arg("requirements") = py::none(),
           py::arg("settings") = py::none(),
           "Creates or atomically replaces a function from its func.py source (str or bytes) and optional "
           "requirements.txt text, and returns its info dict. The new version is built (a virtualenv when there "
           "are requirements, by offline-capable pip) and imported first: on failure BuildError is raised and the "
           "old version keeps serving. settings (a dict, as for settings()) are changed with it.")
      .def(
          "invoke", &invoke, py::arg("name"), py::arg("args") = py::none(), py::arg("kwargs") = py::none(),
          py::arg("request_id") = py::none(), py::arg("version") = py::none(),
          "Runs main(*args, **kwargs) and returns the invocation record (a dict: id, function, request_id, args, "
          "status, result, error, error_type, traceback, stdout, time_start, time_end, duration_ms). A function that "
          "raises gives status 'error', not an exception; FunctionNotFound, InvalidName and Overloaded are raised.")
      .def("stream", [](PyEngine& self, const std::string& name, py::object args, py::object kwargs,
                        std::optional<std::string> request_id, std::optional<std::uint64_t> version) {
            return std::make_unique<PyChunks>(self, invoke_request(name, args, kwargs, std::move(request_id), version));
          }, py::arg("name"), py::arg("args") = py::none(), py::arg("kwargs") = py::none(),
          py::arg("request_id") = py::none(), py::arg("version") = py::none(), py::keep_alive<0, 1>(),
          "Runs main(*args, **kwargs) and iterates over what a generator main yields, each chunk as soon as it is "
          "yielded; the record is the iterator's .record once it is exhausted.")
      .def("remove", [](PyEngine& self, const std::string& name) {
            self.without_gil([&](faas::Engine& engine) { engine.remove(name); });
          }, py::arg("name"), "Deletes a function, its files and its records. Raises FunctionNotFound.")
      .def("delete", [](PyEngine& self, const std::string& name) {
            self.without_gil([&](faas::Engine& engine) { engine.remove(name); });
          }, py::arg("name"), "Same as remove().")
      .def("list", &list_functions, "The functions, as info dicts sorted by name.")
      .def("versions", [](PyEngine& self, const std::string& name) {
            auto versions = self.without_gil([&](faas::Engine& engine) { return engine.versions(name); });
            return json_text_to_python(nlohmann::json(versions).dump());
          }, py::arg("name"),
          "The kept versions of a function's code, newest first: dicts of version, created_at, has_requirements, "
          "code_sha256, env_id and current.")
      .def("rollback", [](PyEngine& self, const std::string& name, std::uint64_t version) {
            return to_python(self.without_gil([&](faas::Engine& engine) { return engine.rollback(name, version); }));
          }, py::arg("name"), py::arg("version"),
          "Makes a kept version the current one again (imported first, as an upload) and returns the info dict. "
          "Raises FunctionNotFound for an unknown function or version.")
      .def("info", [](PyEngine& self, const std::string& name) {
            return to_python(self.without_gil([&](faas::Engine& engine) { return engine.info(name); }));
          }, py::arg("name"),
          "A function's info dict: name, version, created_at, updated_at, has_requirements, code_sha256, env_id.")
      .def("logs", &logs, py::arg("name"), py::arg("limit") = 1000,
           "The function's newest `limit` records (0: all), oldest first, as dicts. Raises FunctionNotFound.")
      .def("follow", [](PyEngine& self, std::optional<std::string> name, std::optional<std::string> after) {
            faas::FollowOptions options;
            options.function = name.value_or("");
            options.after = after.value_or("");
            return std::make_unique<PyFollower>(self, std::move(options));
          }, py::arg("name") = py::none(), py::arg("after") = py::none(), py::keep_alive<0, 1>(),
          "An iterator over the records this engine commits from now on (of one function, or all), as dicts; "
          "with after=ID, first those committed after that record. Each next() waits for a record.")
      .def("import_records", [](PyEngine& self, const std::string& name, const py::list& records) {
            std::vector<std::string> texts;
            for (const auto& record : records) {
              texts.push_back(py::isinstance<py::str>(record) ? record.cast<std::string>()
                                                               : arguments_text(record, "a record"));
            }
            return self.without_gil([&](faas::Engine& engine) { return engine.import_records(name, texts); });
          }, py::arg("name"), py::arg("records"),
          "Adds records made elsewhere (dicts or JSON texts, e.g. the original servers' logs) to a function's "
          "logs, each kept as it is and placed by its time_start. Returns how many.")
      .def("record", [](PyEngine& self, const std::string& invocation_id) -> py::object {
            auto text = self.without_gil([&](faas::Engine& engine) { return engine.record(invocation_id); });
            return text ? json_text_to_python(*text) : py::none();
          }, py::arg("invocation_id"), "One record by its id, or None.")
      .def("status", [](PyEngine& self) {
            return to_python(self.without_gil([](faas::Engine& engine) { return engine.status(); }));
          }, "Server status: uptime, CPU and memory use, loaded functions, invocation counts (the /admin/status shape).")
      .def("nodes", [](PyEngine& self) {
            auto nodes = self.without_gil([](faas::Engine& engine) { return engine.nodes(); });
            return json_text_to_python(nlohmann::json(nodes).dump());
          }, "The servers sharing the store, as their last heartbeats left them (the /admin/nodes shape).")
      .def("stats", [](PyEngine& self) {
            return to_python(self.without_gil([](faas::Engine& engine) { return engine.stats(); }));
          }, "Calls, errors and duration percentiles per function and minute over the last hour, and the server's "
             "CPU and memory per minute (the /admin/stats shape).")
      .def("close", &PyEngine::close,
           "Stops taking invocations, lets running ones finish, commits every record. Idempotent.")
      .def_property_readonly("closed", &PyEngine::closed)
      .def_property_readonly("data_dir", [](PyEngine& self) { return self.config().data_dir.string(); })
      .def_property_readonly("isolation",
                             [](PyEngine& self) { return std::string(faas::to_string(self.config().isolation)); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyEngine& self, py::args) { self.close(); })
      .def("__repr__", [](PyEngine& self) -> std::string {
        return "<libfaas.Engine data_dir='" + self.config().data_dir.string() + "' isolation='" +
               std::string(faas::to_string(self.config().isolation)) + "'" + (self.closed() ? " closed>" : ">");
      });

  // The engine logs uploads and failures through spdlog to stderr; a library imported into someone's program
  // stays quiet but for warnings unless asked.
  spdlog::set_default_logger(spdlog::stderr_color_mt("libfaas"));
  spdlog::set_level(spdlog::level::warn);
  module.def("set_log_level", [](const std::string& level) {
        auto parsed = spdlog::level::from_str(level);
        if (parsed == spdlog::level::off && level != "off") throw py::value_error("unknown log level: " + level);
        spdlog::set_level(parsed);
      }, py::arg("level"),
      "Sets what the engine logs to stderr: trace, debug, info, warn (the default), error, critical or off.");

  // Engines left open at exit are closed before the interpreter goes away.
  py::module_::import("atexit").attr("register")(py::cpp_function([] { PyEngine::close_all(); }));
}
