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

#include "envs/venv_cache.hpp"
#include "faas/function_info.hpp"
#include "runtime/executor.hpp"
#include "store/function_store.hpp"

namespace faas {

class FunctionRegistry {
 public:
  // Reads the database once, then polls it every `poll` until stop().
  FunctionRegistry(std::filesystem::path functions_dir, store::FunctionStore& store, envs::VenvCache& venvs,
                   runtime::Executor& executor, std::chrono::milliseconds poll);
  ~FunctionRegistry();  // stop()

  std::filesystem::path function_dir(std::string_view name) const { return functions_dir_ / std::string(name); }
  // The runtime's view of a version: its func.py and its virtualenv's site-packages.
  std::shared_ptr<runtime::FunctionSpec> make_spec(const FunctionInfo& info) const;

  // The version new calls of `name` run; null when there is no such function.
  std::shared_ptr<const runtime::FunctionSpec> find(const std::string& name) const;
  // A version committed by this process (upload) or a name deleted by it.
  void put(const FunctionInfo& info);
  void erase(const std::string& name);

  // Brings the table in line with the database now.
  void sync();
  void stop();  // ends the poller; idempotent

 private:
  struct Entry {
    FunctionInfo info;
    std::shared_ptr<const runtime::FunctionSpec> spec;
  };

  void restore_files(const FunctionInfo& info);  // rewrites files and envs that differ from the database
  void poll_loop();

  std::filesystem::path functions_dir_;
  store::FunctionStore& store_;
  envs::VenvCache& venvs_;
  runtime::Executor& executor_;
  std::chrono::milliseconds poll_;

  mutable std::shared_mutex table_mutex_;
  std::unordered_map<std::string, Entry> table_;
  std::unordered_set<std::string> touched_;  // put or erased here since the running sync() read the database
  std::mutex sync_mutex_;  // one sync() at a time
  std::uint64_t seen_registry_version_ = 0;

  std::mutex poll_mutex_;
  std::condition_variable poll_cv_;
  bool poll_stop_ = false;
  std::thread poller_;
};

}  // namespace faas
