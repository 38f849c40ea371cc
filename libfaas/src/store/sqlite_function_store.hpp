// The functions registry in <data-dir>/faas.db (SQLite), the default store. One connection behind a mutex.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/function_store.hpp"

namespace faas::store {

class SqliteFunctionStore final : public FunctionStore {
 public:
  explicit SqliteFunctionStore(const std::filesystem::path& db_file);

  std::uint64_t registry_version() override;
  std::vector<FunctionInfo> list() override;
  std::optional<FunctionInfo> find(const std::string& name) override;
  std::optional<FunctionSource> source(const std::string& name) override;
  std::optional<FunctionSettings> settings(const std::string& name) override;
  bool claim_tick(const std::string& name, std::size_t entry, std::int64_t minute) override;
  void forget_ticks_before(std::int64_t minute) override;
  std::uint64_t reserve_revision() override;
  std::uint64_t next_version(const std::string& name) override;
  std::vector<FunctionVersion> versions(const std::string& name) override;
  std::optional<VersionRow> version(const std::string& name, std::uint64_t version) override;
  FunctionInfo put(FunctionInfo info, const std::string& code, const std::optional<std::string>& requirements,
                   const FunctionSettings* settings, std::size_t keep_versions) override;
  bool save_settings(const std::string& name, const FunctionSettings& settings, std::uint64_t revision) override;
  bool remove(const std::string& name) override;
  void heartbeat(const std::string& node, const std::string& started_at, const std::string& status) override;
  std::vector<NodeRow> nodes(std::chrono::seconds window) override;
  void leave(const std::string& node) override;

 private:
  std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace faas::store
