// The functions registry in faas.db: one row per function with its current code, requirements and metadata.
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

namespace faas::store {

struct FunctionSource {
  std::string code;
  std::optional<std::string> requirements;
};

class FunctionStore {
 public:
  explicit FunctionStore(const std::filesystem::path& db_file);

  // Grows at every put() and remove(), from any process: compare it to notice changes.
  std::uint64_t registry_version();
  std::vector<FunctionInfo> list();
  std::optional<FunctionInfo> find(const std::string& name);
  std::optional<FunctionSource> source(const std::string& name);

  // Inserts or replaces a function at `info.version`; keeps its created_at when it existed.
  FunctionInfo put(FunctionInfo info, const std::string& code, const std::optional<std::string>& requirements);
  // Deletes the function and its invocation records. False when there was no such function.
  bool remove(const std::string& name);

 private:
  std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace faas::store
