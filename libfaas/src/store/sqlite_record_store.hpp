// Invocation records and the inbox in <data-dir>/faas.db (SQLite), the default store.
// Commits use their own connection with statements prepared once; reads another, behind a mutex. A thread
// checkpoints the WAL in the background, which keeps commits short (checkpointing inside the commits halved
// their throughput).
#pragma once

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/record_store.hpp"

namespace faas::store {

class SqliteRecordStore final : public RecordStore {
 public:
  SqliteRecordStore(const std::filesystem::path& db_file, std::size_t retention);
  ~SqliteRecordStore() override;

  std::optional<Error> commit(Batch& batch) override;
  std::vector<std::string> read(const std::string& function, std::size_t limit) override;
  std::optional<std::string> find(const std::string& invocation_id) override;
  std::vector<Imported> read_after(const std::string& function, const std::string& after, std::size_t limit) override;
  std::vector<InboxEntry> inbox(const std::string& source, bool prefix) override;
  std::optional<InboxEntry> inbox_entry(const std::string& id) override;
  std::optional<std::string> keyed(const std::string& key, std::chrono::seconds window) override;

 private:
  void checkpoint_loop();
  void trim(const std::string& function);

  std::size_t retention_;

  // The committing thread's.
  std::unique_ptr<SQLite::Database> write_db_;
  std::unique_ptr<SQLite::Statement> insert_;
  std::unique_ptr<SQLite::Statement> accept_;
  std::unique_ptr<SQLite::Statement> replace_;
  std::unique_ptr<SQLite::Statement> keep_key_;
  std::unique_ptr<SQLite::Statement> import_;
  std::unique_ptr<SQLite::Statement> settle_;
  std::unique_ptr<SQLite::Statement> begin_;   // prepared once: parsing them cost a few us per commit
  std::unique_ptr<SQLite::Statement> commit_;
  std::unique_ptr<SQLite::Statement> rollback_;
  std::unordered_map<std::string, std::size_t> since_trim_;

  std::mutex read_mutex_;
  std::unique_ptr<SQLite::Database> read_db_;

  // Checkpoints (copying the WAL into the database file) run here, not inside commits.
  std::unique_ptr<SQLite::Database> checkpoint_db_;
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_cv_;
  std::uint64_t committed_ = 0;  // commits so far (under checkpoint_mutex_)
  bool stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace faas::store
