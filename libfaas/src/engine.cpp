// faas::Engine: the façade that ties the executor, the store, the virtualenvs and status together.
#include "faas/engine.hpp"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "envs/venv_cache.hpp"
#include "runtime/executor.hpp"
#include "runtime/python_host.hpp"
#include "store/function_store.hpp"
#include "store/record_log.hpp"
#include "sysinfo/sysinfo.hpp"
#include "util/files.hpp"
#include "util/hash.hpp"
#include "util/ids.hpp"
#include "util/names.hpp"

namespace fs = std::filesystem;

namespace faas {

namespace {

constexpr std::size_t max_request_id = 256;
constexpr std::string_view staging_prefix = ".staging-";
constexpr std::string_view trash_prefix = ".trash-";

std::string now_text() { return format_local_time(Invocation::Clock::now()); }

[[noreturn]] void throw_not_found(std::string_view name) {
  throw Error(ErrorCode::not_found, "function '" + std::string(name) + "' not found");
}

void remove_tree_quietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) spdlog::warn("cannot remove {}: {}", path.string(), ec.message());
}

}  // namespace

struct Engine::Impl {
  struct Entry {
    FunctionInfo info;
    std::shared_ptr<const runtime::FunctionSpec> spec;
  };

  explicit Impl(EngineConfig cfg);
  ~Impl();

  fs::path function_dir(std::string_view name) const { return functions_dir / std::string(name); }
  std::shared_ptr<runtime::FunctionSpec> make_spec(const FunctionInfo& info) const;
  // Brings the in-memory table (and files, envs, loaded modules) in line with the database.
  void sync_registry();
  void restore_files(const FunctionInfo& info);
  void sync_loop();
  void delivered();
  // Counts an invocation in and makes its call, or throws the Error that refuses it.
  std::unique_ptr<runtime::Call> admit(InvokeRequest& request);

  EngineConfig config;
  fs::path functions_dir;
  std::string site_packages_suffix;
  std::unique_ptr<store::FunctionStore> functions;
  std::unique_ptr<envs::VenvCache> venvs;
  std::unique_ptr<runtime::Executor> executor;
  std::unique_ptr<store::RecordLog> log;
  sysinfo::Sampler sampler;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  mutable std::shared_mutex table_mutex;
  std::unordered_map<std::string, Entry> table;
  std::mutex sync_mutex;  // one sync_registry() at a time
  std::uint64_t seen_registry_version = 0;

  std::atomic<bool> accepting{true};
  std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::uint64_t max_in_flight;
  std::mutex drain_mutex;
  std::condition_variable drained;

  std::mutex poll_mutex;
  std::condition_variable poll_cv;
  bool poll_stop = false;
  std::thread poller;
  std::once_flag shutdown_once;
};

Engine::Impl::Impl(EngineConfig cfg)
    : config(std::move(cfg)),
      max_in_flight(static_cast<std::uint64_t>(config.max_queue) + std::max(1u, config.max_concurrency)) {
  if (config.data_dir.empty()) throw Error(ErrorCode::invalid_input, "data_dir must not be empty");
  std::error_code ec;
  fs::create_directories(config.data_dir / "functions", ec);
  fs::create_directories(config.data_dir / "envs", ec);
  if (ec) throw Error(ErrorCode::internal, "cannot create data dir " + config.data_dir.string() + ": " + ec.message());
  config.data_dir = fs::canonical(config.data_dir);
  functions_dir = config.data_dir / "functions";
  for (const auto& entry : fs::directory_iterator(functions_dir)) {
    auto file = entry.path().filename().string();
    if (file.rfind(staging_prefix, 0) == 0 || file.rfind(trash_prefix, 0) == 0) remove_tree_quietly(entry.path());
  }

  auto db_file = config.data_dir / "faas.db";
  functions = std::make_unique<store::FunctionStore>(db_file);

  runtime::ExecutorOptions options;
  options.threads = std::max(1u, config.max_concurrency);
  options.timeout = config.timeout;
  options.output_limit = config.output_limit;
  options.python = config.python;
  options.workers = config.workers;
  executor = runtime::make_executor(config.isolation, options, [this](std::unique_ptr<runtime::Call> call) {
    log->append(std::move(call->record), std::move(call->done));
  });
  site_packages_suffix = runtime::PythonHost::get(config.python).site_packages_suffix();

  venvs = std::make_unique<envs::VenvCache>(
      envs::VenvOptions{config.data_dir / "envs", config.python, config.pip_timeout, site_packages_suffix});
  venvs->remove_leftovers();

  log = std::make_unique<store::RecordLog>(
      db_file, store::RecordLog::Options{config.log_retention, [this] { return in_flight.load(); }},
      [this](const Invocation& record) {
        completed.fetch_add(1, std::memory_order_relaxed);
        if (!record.ok()) failed.fetch_add(1, std::memory_order_relaxed);
      },
      [this] { delivered(); });

  sync_registry();
  poller = std::thread([this] { sync_loop(); });
}

Engine::Impl::~Impl() = default;

void Engine::Impl::delivered() {
  if (in_flight.fetch_sub(1) == 1 && !accepting.load()) {
    std::lock_guard lock(drain_mutex);
    drained.notify_all();
  }
}

std::shared_ptr<runtime::FunctionSpec> Engine::Impl::make_spec(const FunctionInfo& info) const {
  auto spec = std::make_shared<runtime::FunctionSpec>();
  spec->name = info.name;
  spec->version = info.version;
  spec->source = function_dir(info.name) / "func.py";
  if (!info.env_id.empty()) spec->site_dirs.push_back(venvs->site_packages(info.env_id).string());
  return spec;
}

void Engine::Impl::restore_files(const FunctionInfo& info) {
  auto dir = function_dir(info.name);
  std::error_code ec;
  auto on_disk = fs::exists(dir / "func.py", ec) ? sha256_hex(read_file(dir / "func.py")) : std::string();
  bool env_missing = !info.env_id.empty() && !venvs->exists(info.env_id);
  if (on_disk == info.code_sha256 && !env_missing) return;
  auto source = functions->source(info.name);
  if (!source) return;  // deleted meanwhile
  if (on_disk != info.code_sha256) {
    spdlog::info("restoring the files of function {} v{} from the database", info.name, info.version);
    fs::create_directories(dir);
    write_file_atomic(dir / "func.py", source->code);
    if (source->requirements) {
      write_file_atomic(dir / "requirements.txt", *source->requirements);
    } else {
      fs::remove(dir / "requirements.txt", ec);
    }
    fs::remove_all(dir / "__pycache__", ec);
  }
  if (env_missing) {
    try {
      venvs->ensure(info.env_id, envs::normalize_requirements(source->requirements.value_or("")));
    } catch (const Error& e) {
      spdlog::error("cannot rebuild the virtualenv of function {}: {}", info.name, e.what());
    }
  }
}

void Engine::Impl::sync_registry() {
  std::lock_guard sync(sync_mutex);
  auto version = functions->registry_version();
  if (version == seen_registry_version && seen_registry_version != 0) return;
  auto rows = functions->list();

  std::unordered_map<std::string, Entry> fresh;
  std::vector<std::string> gone;
  {
    std::shared_lock read(table_mutex);
    for (auto& info : rows) {
      auto it = table.find(info.name);
      if (it != table.end() && it->second.info.version == info.version) {
        fresh.emplace(info.name, it->second);
        continue;
      }
      fresh.emplace(info.name, Entry{info, nullptr});
    }
    for (const auto& [name, entry] : table) {
      if (!fresh.count(name)) gone.push_back(name);
    }
  }
  for (auto& [name, entry] : fresh) {
    if (entry.spec) continue;
    try {
      restore_files(entry.info);
    } catch (const Error& e) {
      spdlog::error("cannot restore function {}: {}", name, e.what());
    }
    entry.spec = make_spec(entry.info);
  }
  {
    std::unique_lock write(table_mutex);
    // An upload or delete made in this process while we read keeps its own (newer) view.
    for (auto& [name, entry] : table) {
      auto it = fresh.find(name);
      if (it != fresh.end() && entry.info.version > it->second.info.version) it->second = entry;
    }
    table.swap(fresh);
  }
  for (const auto& name : gone) executor->retire(name, 0);
  seen_registry_version = version;
}

void Engine::Impl::sync_loop() {
  std::unique_lock lock(poll_mutex);
  while (!poll_stop) {
    poll_cv.wait_for(lock, config.registry_poll);
    if (poll_stop) break;
    lock.unlock();
    try {
      sync_registry();
    } catch (const std::exception& e) {
      spdlog::warn("cannot refresh the function registry: {}", e.what());
    }
    lock.lock();
  }
}

Engine::Engine(EngineConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Engine::~Engine() { shutdown(); }

const EngineConfig& Engine::config() const noexcept { return impl_->config; }

FunctionInfo Engine::upload(std::string_view name, std::string_view code, std::optional<std::string_view> requirements) {
  check_function_name(name);
  if (!impl_->accepting) throw Error(ErrorCode::shutting_down, "the engine is shutting down");
  auto& engine = *impl_;
  std::string name_text(name);

  auto normalized = envs::normalize_requirements(requirements.value_or(""));
  std::optional<std::string> requirements_text;
  if (!normalized.empty()) requirements_text = std::string(*requirements);
  FunctionInfo info;
  info.name = name_text;
  info.code_sha256 = sha256_hex(code);
  info.env_id = envs::env_id(normalized);
  info.has_requirements = requirements_text.has_value();
  std::vector<std::string> site_dirs;
  if (!info.env_id.empty()) site_dirs.push_back(engine.venvs->ensure(info.env_id, normalized).string());

  auto staging = engine.functions_dir / (std::string(staging_prefix) + make_uuid4());
  struct Cleanup {
    fs::path path;
    ~Cleanup() { remove_tree_quietly(path); }
  } cleanup{staging};
  fs::create_directories(staging);
  write_file_atomic(staging / "func.py", code);
  if (requirements_text) write_file_atomic(staging / "requirements.txt", *requirements_text);

  // One upload or delete of a name at a time, across threads and processes.
  FileLock lock(engine.functions_dir / ("." + name_text + ".lock"));
  auto current = engine.functions->find(name_text);
  info.version = current ? current->version + 1 : 1;
  info.created_at = info.updated_at = now_text();

  auto staged = engine.make_spec(info);
  staged->staged_source = staging / "func.py";
  engine.executor->load(staged);  // throws build_failed; the old version keeps serving

  auto live = engine.function_dir(name_text);
  bool replaced = fs::exists(live);
  if (replaced) {
    exchange_paths(staging, live);  // the old files move to `staging` and go with the cleanup
  } else {
    fs::rename(staging, live);
  }
  try {
    info = engine.functions->put(info, std::string(code), requirements_text);
  } catch (...) {
    if (replaced) {
      exchange_paths(staging, live);
    } else {
      fs::rename(live, staging);
    }
    engine.executor->retire(name_text, current ? current->version : 0);
    throw;
  }
  {
    std::unique_lock write(engine.table_mutex);
    engine.table[name_text] = Impl::Entry{info, engine.make_spec(info)};
  }
  spdlog::info("uploaded function {} v{}", info.name, info.version);
  return info;
}

void Engine::remove(std::string_view name) {
  check_function_name(name);
  auto& engine = *impl_;
  std::string name_text(name);
  FileLock lock(engine.functions_dir / ("." + name_text + ".lock"));
  if (!engine.functions->remove(name_text)) throw_not_found(name);
  {
    std::unique_lock write(engine.table_mutex);
    engine.table.erase(name_text);
  }
  engine.executor->retire(name_text, 0);
  auto trash = engine.functions_dir / (std::string(trash_prefix) + make_uuid4());
  std::error_code ec;
  fs::rename(engine.function_dir(name_text), trash, ec);
  if (!ec) remove_tree_quietly(trash);
  fs::remove(engine.functions_dir / ("." + name_text + ".lock"), ec);
  spdlog::info("deleted function {}", name_text);
}

std::vector<FunctionInfo> Engine::list() const { return impl_->functions->list(); }

FunctionInfo Engine::info(std::string_view name) const {
  check_function_name(name);
  auto found = impl_->functions->find(std::string(name));
  if (!found) throw_not_found(name);
  return *found;
}

std::unique_ptr<runtime::Call> Engine::Impl::admit(InvokeRequest& request) {
  std::shared_ptr<const runtime::FunctionSpec> spec;
  {
    std::shared_lock read(table_mutex);
    auto it = table.find(request.function);
    if (it != table.end()) spec = it->second.spec;
  }
  if (!spec) {
    check_function_name(request.function);
    throw_not_found(request.function);
  }
  if (request.request_id.size() > max_request_id) {
    throw Error(ErrorCode::invalid_input, "request_id is longer than 256 characters");
  }
  if (request.request_id.empty()) request.request_id = make_uuid4();

  // Count first, then check: shutdown() clears `accepting` and then waits for the count to drain.
  if (in_flight.fetch_add(1) >= max_in_flight) {
    delivered();
    throw Error(ErrorCode::overloaded, "too many invocations in flight; retry later");
  }
  if (!accepting.load()) {
    delivered();
    throw Error(ErrorCode::shutting_down, "the engine is shutting down");
  }
  auto call = std::make_unique<runtime::Call>();
  call->function = std::move(spec);
  call->request = std::move(request);
  call->record.id = make_time_ordered_uuid();
  return call;
}

std::string Engine::invoke_async(InvokeRequest request, InvokeCallback done) {
  std::unique_ptr<runtime::Call> call;
  try {
    call = impl_->admit(request);
  } catch (const Error& e) {
    done(e);
    return {};
  }
  std::string id = call->record.id;
  call->done = std::move(done);
  impl_->executor->submit(std::move(call));
  return id;
}

InvocationResult Engine::invoke(InvokeRequest request) {
  auto& engine = *impl_;
  auto call = engine.admit(request);
  std::promise<Outcome<InvocationResult>> promise;
  auto future = promise.get_future();
  auto deliver = [&promise](Outcome<InvocationResult> outcome) { promise.set_value(std::move(outcome)); };
  // A lone caller runs the function and commits its record on its own thread; under load it queues like
  // everyone else.
  if (engine.executor->run_inline(*call)) {
    if (auto committed = engine.log->commit_inline(call->record)) {
      engine.delivered();
      return std::move(*committed);
    }
    engine.log->append(std::move(call->record), deliver);
  } else {
    call->done = deliver;
    engine.executor->submit(std::move(call));
  }
  auto outcome = future.get();
  if (!outcome.ok()) throw outcome.error();
  return std::move(outcome).value();
}

InvocationResult Engine::invoke(std::string_view name, const nlohmann::json& args) {
  if (!args.is_array()) throw Error(ErrorCode::invalid_input, "args must be a JSON array");
  InvokeRequest request;
  request.function = std::string(name);
  request.args = args.dump();
  return invoke(std::move(request));
}

std::vector<std::string> Engine::logs(std::string_view name, std::size_t limit) const {
  info(name);  // not_found / invalid_name
  return impl_->log->read(std::string(name), limit);
}

std::optional<std::string> Engine::record(std::string_view invocation_id) const {
  return impl_->log->find(std::string(invocation_id));
}

Status Engine::status() const {
  auto& engine = *impl_;
  Status status;
  engine.sampler.sample(status);
  status.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - engine.started).count();
  status.loaded_functions = engine.executor->loaded_count();
  status.invocations = engine.completed.load();
  status.invocation_errors = engine.failed.load();
  status.in_flight = engine.in_flight.load();
  status.queued = engine.executor->queued();
  status.isolation = std::string(to_string(engine.config.isolation));
  status.timestamp = now_text();
  return status;
}

void Engine::shutdown() {
  auto& engine = *impl_;
  std::call_once(engine.shutdown_once, [&engine] {
    engine.accepting = false;
    {
      std::unique_lock lock(engine.drain_mutex);
      auto limit = engine.config.timeout + std::chrono::seconds(5);
      if (!engine.drained.wait_for(lock, limit, [&] { return engine.in_flight.load() == 0; })) {
        spdlog::warn("{} invocations still running at shutdown", engine.in_flight.load());
      }
    }
    {
      std::lock_guard lock(engine.poll_mutex);
      engine.poll_stop = true;
    }
    engine.poll_cv.notify_all();
    engine.poller.join();
    engine.executor->stop();
    engine.log->stop();
  });
}

std::string join_json_array(const std::vector<std::string>& items) {
  std::size_t size = 2;
  for (const auto& item : items) size += item.size() + 1;
  std::string out;
  out.reserve(size);
  out.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += items[i];
  }
  out.push_back(']');
  return out;
}

std::string_view to_string(Isolation isolation) noexcept {
  return isolation == Isolation::process ? "process" : "inprocess";
}

Isolation parse_isolation(std::string_view text) {
  if (text == "inprocess") return Isolation::inprocess;
  if (text == "process") return Isolation::process;
  throw Error(ErrorCode::invalid_input, "isolation must be 'inprocess' or 'process', not '" + std::string(text) + "'");
}

void to_json(nlohmann::json& out, const FunctionInfo& info) {
  out = {{"name", info.name},
         {"version", info.version},
         {"created_at", info.created_at},
         {"updated_at", info.updated_at},
         {"has_requirements", info.has_requirements},
         {"code_sha256", info.code_sha256},
         {"env_id", info.env_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.env_id)}};
}

void to_json(nlohmann::json& out, const Status& status) {
  out = {{"status", "running"},
         {"uptime", status.uptime_seconds},
         {"cpu_percent", status.cpu_percent},
         {"ram_percent", status.ram_percent},
         {"loaded_functions", status.loaded_functions},
         {"cpu_usage_absolute",
          {{"process_milicpu", status.process_milicpu}, {"process_cpu_percent", status.process_cpu_percent}}},
         {"memory_usage_absolute", {{"process_rss_mb", status.process_rss_mb}}},
         {"system_memory_info",
          {{"total_mb", status.system_memory.total_mb},
           {"available_mb", status.system_memory.available_mb},
           {"used_mb", status.system_memory.used_mb},
           {"percent", status.system_memory.percent}}},
         {"invocations",
          {{"total", status.invocations}, {"errors", status.invocation_errors}, {"in_flight", status.in_flight}, {"queued", status.queued}}},
         {"isolation", status.isolation},
         {"timestamp", status.timestamp}};
}

}  // namespace faas
