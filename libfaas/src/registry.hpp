// The engine's table of functions: which version of each name new calls run. faas.db is the source of truth,
// shared with other processes on the same data dir; a poller brings the table (and the files, envs and loaded
// modules behind it) in line with it. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "envs/venv_cache.hpp"
#include "faas/config.hpp"
#include "faas/function_info.hpp"
#include "faas/function_settings.hpp"
#include "runtime/executor.hpp"
#include "store/function_store.hpp"

namespace faas {

class FunctionRegistry {
 public:
  // Reads the database once, then polls it every `poll` until stop().
  // `defaults` (the engine's configuration) fills what a function's settings leave unset; it must outlive us.
  FunctionRegistry(std::filesystem::path functions_dir, store::FunctionStore& store, envs::VenvCache& venvs,
                   runtime::Executor& executor, const EngineConfig& defaults);
  ~FunctionRegistry();  // stop()

  std::filesystem::path function_dir(std::string_view name) const { return functions_dir_ / std::string(name); }
  // The runtime's view of a version: its func.py, its virtualenv's site-packages and its settings.
  std::shared_ptr<runtime::FunctionSpec> make_spec(const FunctionInfo& info, const FunctionSettings& settings);

  // The version new calls of `name` run; null when there is no such function.
  std::shared_ptr<const runtime::FunctionSpec> find(const std::string& name) const;
  // A kept version of `name`, for calls pinned to it: the current spec when it is the current version, else a
  // spec of its own named "name@N" (so executors give it workers of its own), its files written under
  // functions/.versions/ and its virtualenv built at the first call. Null when there is no such function;
  // throws Error(not_found) for a version that is not kept.
  std::shared_ptr<const runtime::FunctionSpec> pinned(const std::string& name, std::uint64_t version);
  // The current specs of the functions that have a schedule.
  std::vector<std::shared_ptr<const runtime::FunctionSpec>> scheduled() const;
  // Forgets the pinned versions of `name` and returns their spec names, for the executor to retire.
  std::vector<std::string> erase_pinned(const std::string& name);
  // A version or settings committed by this process (upload, settings change) or a name deleted by it.
  void put(const FunctionInfo& info, const FunctionSettings& settings);
  void erase(const std::string& name);
  // An upload of `name` in this process is replacing its files: until end_upload(), a sync leaves its files and
  // entry alone (another node's version must not be written under the upload's), then reads it again.
  void begin_upload(const std::string& name);
  void end_upload(const std::string& name);

  // Brings the table in line with the database now.
  void sync();
  void stop();  // ends the poller; idempotent

 private:
  struct Entry {
    FunctionInfo info;
    std::shared_ptr<const runtime::FunctionSpec> spec;
  };
  // The counter of a name's calls in flight, the same for all its revisions.
  std::shared_ptr<std::atomic<unsigned>> in_flight_counter(const std::string& name);

  void restore_files(const FunctionInfo& info);  // rewrites files and envs that differ from the database
  void poll_loop();

  std::filesystem::path functions_dir_;
  store::FunctionStore& store_;
  envs::VenvCache& venvs_;
  runtime::Executor& executor_;
  const EngineConfig& defaults_;

  mutable std::shared_mutex table_mutex_;
  std::unordered_map<std::string, Entry> table_;
  std::unordered_set<std::string> touched_;  // put or erased here since the running sync() read the database
  std::unordered_set<std::string> uploading_;  // begin_upload() .. end_upload()
  std::atomic<bool> reread_{false};            // the next sync() reads everything, whatever the version says
  std::mutex sync_mutex_;  // one sync() at a time
  std::uint64_t seen_registry_version_ = 0;
  std::mutex pinned_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const runtime::FunctionSpec>> pinned_;  // by "name@N"
  std::mutex counters_mutex_;
  std::unordered_map<std::string, std::shared_ptr<std::atomic<unsigned>>> in_flight_counters_;

  std::mutex poll_mutex_;
  std::condition_variable poll_cv_;
  bool poll_stop_ = false;
  bool poll_reread_ = false;  // the store said something changed (or it reconnected): read everything again
  std::thread poller_;
};

}  // namespace faas
