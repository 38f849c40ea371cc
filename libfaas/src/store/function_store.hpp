// The functions registry in faas.db: one row per function with its current code, requirements, settings and
// metadata.
// The database is the source of truth; the files under functions/ are a copy the engine can always rewrite.
// Thread-safe (one connection behind a mutex; registry operations are rare).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "faas/function_info.hpp"
#include "faas/function_settings.hpp"

namespace faas::store {

struct FunctionSource {
  std::string code;
  std::optional<std::string> requirements;
};

// One kept version of a function.
struct VersionRow {
  FunctionVersion info;
  FunctionSource source;
};

class FunctionStore {
 public:
  explicit FunctionStore(const std::filesystem::path& db_file);

  // Grows at every put() and remove(), from any process: compare it to notice changes.
  std::uint64_t registry_version();
  std::vector<FunctionInfo> list();
  std::optional<FunctionInfo> find(const std::string& name);
  std::optional<FunctionSource> source(const std::string& name);

  std::optional<FunctionSettings> settings(const std::string& name);

  // Claims a schedule's tick: true for the first caller (in any process), false after.
  bool claim_tick(const std::string& name, std::size_t entry, std::int64_t minute);
  void forget_ticks_before(std::int64_t minute);

  // A new revision number, for a change about to be made (an upload imports its new version under it).
  std::uint64_t reserve_revision();
  // The number the next upload of `name` gets: one above every version it ever had that is still known.
  std::uint64_t next_version(const std::string& name);
  // Kept versions, newest first; empty when there is no such function.
  std::vector<FunctionVersion> versions(const std::string& name);
  std::optional<VersionRow> version(const std::string& name, std::uint64_t version);
  // Makes `info.version` (new, or a kept one: a rollback) the function's current version at `info.revision`
  // (from reserve_revision()); keeps its created_at, and its settings unless `settings` is given. Keeps the
  // newest `keep_versions` versions (at least 1) and the current one, and forgets older ones.
  FunctionInfo put(FunctionInfo info, const std::string& code, const std::optional<std::string>& requirements,
                   const FunctionSettings* settings = nullptr, std::size_t keep_versions = 10);
  // Replaces a function's settings and records `revision` (from reserve_revision()). False when there is no
  // such function.
  bool save_settings(const std::string& name, const FunctionSettings& settings, std::uint64_t revision);
  // Deletes the function and its invocation records. False when there was no such function.
  bool remove(const std::string& name);

 private:
  std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace faas::store
