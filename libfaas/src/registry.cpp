#include "registry.hpp"

#include <spdlog/spdlog.h>

#include "faas/error.hpp"
#include "util/files.hpp"
#include "util/hash.hpp"

namespace fs = std::filesystem;

namespace faas {

FunctionRegistry::FunctionRegistry(fs::path functions_dir, store::FunctionStore& store, envs::VenvCache& venvs,
                                   runtime::Executor& executor, const EngineConfig& defaults)
    : functions_dir_(std::move(functions_dir)), store_(store), venvs_(venvs), executor_(executor), defaults_(defaults) {
  sync();
  // PostgreSQL tells of a change at once (NOTIFY); SQLite is polled.
  store_.on_change([this] {
    {
      std::lock_guard lock(poll_mutex_);
      poll_reread_ = true;
    }
    poll_cv_.notify_all();
  });
  poller_ = std::thread([this] { poll_loop(); });
}

FunctionRegistry::~FunctionRegistry() { stop(); }

std::shared_ptr<std::atomic<unsigned>> FunctionRegistry::in_flight_counter(const std::string& name) {
  std::lock_guard lock(counters_mutex_);
  auto& counter = in_flight_counters_[name];
  if (!counter) counter = std::make_shared<std::atomic<unsigned>>(0);
  return counter;
}

std::shared_ptr<runtime::FunctionSpec> FunctionRegistry::make_spec(const FunctionInfo& info,
                                                                   const FunctionSettings& settings) {
  auto spec = std::make_shared<runtime::FunctionSpec>();
  spec->name = info.name;
  spec->version = info.version;
  spec->revision = info.revision;
  spec->source = function_dir(info.name) / "func.py";
  if (!info.env_id.empty()) spec->site_dirs.push_back(venvs_.site_packages(info.env_id).string());
  const auto& workers = defaults_.workers;
  spec->timeout = settings.timeout.value_or(defaults_.timeout);
  spec->memory_limit_mb = settings.memory_mb.value_or(workers.memory_limit_mb);
  spec->network = settings.network.value_or(workers.network);
  spec->max_workers = std::max(1u, settings.max_workers.value_or(workers.max_per_function));
  spec->min_workers = std::min(settings.min_workers.value_or(workers.min_per_function), spec->max_workers);
  spec->max_concurrency = settings.max_concurrency;
  spec->is_public = settings.is_public;
  for (const auto* variables : {&settings.env, &settings.secrets}) {
    for (const auto& [name, value] : *variables) spec->environment.push_back(name + "=" + value);
  }
  for (const auto& call : settings.schedule) {
    spec->schedule.push_back({CronSchedule::parse(call.cron), call.args, call.kwargs});
  }
  spec->in_flight = in_flight_counter(info.name);
  return spec;
}

std::shared_ptr<const runtime::FunctionSpec> FunctionRegistry::find(const std::string& name) const {
  std::shared_lock read(table_mutex_);
  auto it = table_.find(name);
  return it == table_.end() ? nullptr : it->second.spec;
}

std::shared_ptr<const runtime::FunctionSpec> FunctionRegistry::pinned(const std::string& name,
                                                                     std::uint64_t version) {
  auto current = find(name);
  if (!current || current->version == version) return current;
  auto key = name + "@" + std::to_string(version);
  {
    std::lock_guard lock(pinned_mutex_);
    auto it = pinned_.find(key);
    // Made under the function's current revision (its settings, and which versions are kept): still good.
    if (it != pinned_.end() && it->second->revision == current->revision) return it->second;
  }
  auto row = store_.version(name, version);
  if (!row) {
    throw Error(ErrorCode::not_found, "function '" + name + "' has no version " + std::to_string(version) +
                                          " (see its versions)");
  }
  auto dir = functions_dir_ / ".versions" / name / std::to_string(version);
  std::error_code ec;
  if (!fs::exists(dir / "func.py", ec) || sha256_hex(read_file(dir / "func.py")) != row->info.code_sha256) {
    fs::create_directories(dir);
    write_file_atomic(dir / "func.py", row->source.code);
    if (row->source.requirements) write_file_atomic(dir / "requirements.txt", *row->source.requirements);
  }
  auto spec = std::make_shared<runtime::FunctionSpec>(*current);  // its settings, revision and counter
  spec->name = key;
  spec->version = version;
  spec->source = dir / "func.py";
  spec->staged_source.clear();
  spec->site_dirs.clear();
  if (!row->info.env_id.empty()) {
    spec->site_dirs.push_back(
        venvs_.ensure(row->info.env_id, envs::normalize_requirements(row->source.requirements.value_or(""))).string());
  }
  spec->min_workers = 0;  // workers of an old version go once idle
  std::lock_guard lock(pinned_mutex_);
  pinned_[key] = spec;
  return spec;
}

std::vector<std::shared_ptr<const runtime::FunctionSpec>> FunctionRegistry::scheduled() const {
  std::vector<std::shared_ptr<const runtime::FunctionSpec>> out;
  std::shared_lock read(table_mutex_);
  for (const auto& [name, entry] : table_) {
    if (entry.spec && !entry.spec->schedule.empty()) out.push_back(entry.spec);
  }
  return out;
}

std::vector<std::string> FunctionRegistry::erase_pinned(const std::string& name) {
  std::vector<std::string> out;
  std::lock_guard lock(pinned_mutex_);
  for (auto it = pinned_.begin(); it != pinned_.end();) {
    if (it->first.rfind(name + "@", 0) == 0) {
      out.push_back(it->first);
      it = pinned_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void FunctionRegistry::put(const FunctionInfo& info, const FunctionSettings& settings) {
  auto spec = make_spec(info, settings);
  std::unique_lock write(table_mutex_);
  auto& entry = table_[info.name];
  // A sync may already have brought a newer revision, committed by another process after this one's.
  if (entry.spec && entry.info.revision > info.revision) return;
  entry = Entry{info, std::move(spec)};
  touched_.insert(info.name);
}

void FunctionRegistry::erase(const std::string& name) {
  std::unique_lock write(table_mutex_);
  table_.erase(name);
  touched_.insert(name);
}

void FunctionRegistry::begin_upload(const std::string& name) {
  {
    std::unique_lock write(table_mutex_);
    uploading_.insert(name);
  }
  std::lock_guard wait(sync_mutex_);  // a sync begun before it may be writing the name's files: let it end
}

void FunctionRegistry::end_upload(const std::string& name) {
  {
    std::unique_lock write(table_mutex_);
    uploading_.erase(name);
  }
  reread_ = true;  // what a sync skipped meanwhile (a version committed elsewhere after ours) is read now
  {
    std::lock_guard lock(poll_mutex_);
    poll_reread_ = true;
  }
  poll_cv_.notify_all();
}

void FunctionRegistry::restore_files(const FunctionInfo& info) {
  auto dir = function_dir(info.name);
  std::error_code ec;
  auto on_disk = fs::exists(dir / "func.py", ec) ? sha256_hex(read_file(dir / "func.py")) : std::string();
  bool env_missing = !info.env_id.empty() && !venvs_.exists(info.env_id);
  if (on_disk == info.code_sha256 && !env_missing) return;
  auto source = store_.source(info.name);
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
      venvs_.ensure(info.env_id, envs::normalize_requirements(source->requirements.value_or("")));
    } catch (const Error& e) {
      spdlog::error("cannot rebuild the virtualenv of function {}: {}", info.name, e.what());
    }
  }
}

void FunctionRegistry::sync() {
  std::lock_guard sync(sync_mutex_);
  auto version = store_.registry_version();
  bool reread = reread_.exchange(false);
  if (version == seen_registry_version_ && seen_registry_version_ != 0 && !reread) return;
  {
    std::unique_lock write(table_mutex_);
    touched_.clear();
  }
  auto rows = store_.list();

  std::unordered_map<std::string, Entry> fresh;
  std::unordered_set<std::string> uploading;
  {
    std::shared_lock read(table_mutex_);
    uploading = uploading_;
    for (auto& info : rows) {
      if (uploading.contains(info.name)) continue;  // its files are the upload's until it ends
      auto it = table_.find(info.name);
      if (it != table_.end() && it->second.info.revision == info.revision) {
        fresh.emplace(info.name, it->second);
        continue;
      }
      fresh.emplace(info.name, Entry{info, nullptr});
    }
  }
  for (auto& [name, entry] : fresh) {
    if (entry.spec) continue;
    try {
      restore_files(entry.info);
    } catch (const Error& e) {
      spdlog::error("cannot restore function {}: {}", name, e.what());
    }
    entry.spec = make_spec(entry.info, store_.settings(name).value_or(FunctionSettings{}));
  }
  std::vector<std::string> gone;  // deleted by another process
  {
    std::unique_lock write(table_mutex_);
    // An upload or delete made in this process since we read the database keeps its own view where it is newer:
    // a function uploaded meanwhile is not in `rows`, and must neither vanish nor be retired; of two versions,
    // the higher revision wins below (another process may have committed a later upload of the same name).
    for (const auto& name : uploading) {
      auto it = table_.find(name);
      if (it != table_.end()) fresh.insert_or_assign(name, it->second);
    }
    for (const auto& name : touched_) {
      auto it = table_.find(name);
      if (it == table_.end()) {
        fresh.erase(name);
      } else if (auto read = fresh.find(name); read == fresh.end()) {
        fresh.emplace(name, it->second);
      }
    }
    for (auto& [name, entry] : table_) {
      auto it = fresh.find(name);
      if (it == fresh.end()) {
        gone.push_back(name);
      } else if (entry.info.revision > it->second.info.revision) {
        it->second = entry;
      }
    }
    table_.swap(fresh);
  }
  for (const auto& name : gone) executor_.retire(name, 0);
  seen_registry_version_ = version;
}

void FunctionRegistry::poll_loop() {
  bool failing = false;
  std::unique_lock lock(poll_mutex_);
  while (!poll_stop_) {
    poll_cv_.wait_for(lock, defaults_.registry_poll, [this] { return poll_stop_ || poll_reread_; });
    if (poll_stop_) break;
    bool reread = std::exchange(poll_reread_, false);
    lock.unlock();
    try {
      if (reread) {
        std::lock_guard sync(sync_mutex_);
        seen_registry_version_ = 0;
      }
      sync();
      if (std::exchange(failing, false)) spdlog::info("the function registry is refreshed again");
    } catch (const std::exception& e) {
      // Once per outage, not every poll.
      if (!std::exchange(failing, true)) spdlog::warn("cannot refresh the function registry: {}", e.what());
    }
    lock.lock();
  }
}

void FunctionRegistry::stop() {
  store_.on_change({});
  {
    std::lock_guard lock(poll_mutex_);
    poll_stop_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

}  // namespace faas
