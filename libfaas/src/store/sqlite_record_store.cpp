#include "store/sqlite_record_store.hpp"

#include <sqlite3.h>

#include <spdlog/spdlog.h>

#include "store/database.hpp"

namespace faas::store {

namespace {

// A row of "SELECT id, function, body, reply, source FROM inbox".
InboxEntry inbox_row(SQLite::Statement& query) {
  InboxEntry entry;
  entry.id = query.getColumn(0).getString();
  entry.function = query.getColumn(1).getString();
  entry.body = query.getColumn(2).getString();
  entry.reply = query.getColumn(3).getString();
  entry.source = query.getColumn(4).getString();
  return entry;
}

}  // namespace

SqliteRecordStore::SqliteRecordStore(const std::filesystem::path& db_file, std::size_t retention)
    : retention_(retention),
      write_db_(open_database(db_file)),
      read_db_(open_database(db_file)),
      checkpoint_db_(open_database(db_file)) {
  write_db_->exec("PRAGMA wal_autocheckpoint=0");
  insert_ = std::make_unique<SQLite::Statement>(*write_db_,
                                                "INSERT INTO invocations (id, function, record) VALUES (?, ?, ?)");
  accept_ = std::make_unique<SQLite::Statement>(
      *write_db_, "INSERT OR IGNORE INTO inbox (id, source, function, body, reply) VALUES (?, ?, ?, ?, ?)");
  replace_ = std::make_unique<SQLite::Statement>(
      *write_db_, "INSERT OR REPLACE INTO inbox (id, source, function, body, reply) VALUES (?, ?, ?, ?, ?)");
  keep_key_ = std::make_unique<SQLite::Statement>(
      *write_db_, "INSERT OR REPLACE INTO idempotency_keys (key, id, created_at) VALUES (?, ?, unixepoch())");
  settle_ = std::make_unique<SQLite::Statement>(*write_db_, "DELETE FROM inbox WHERE id = ?");
  import_ = std::make_unique<SQLite::Statement>(
      *write_db_, "INSERT OR IGNORE INTO invocations (id, function, record) VALUES (?, ?, ?)");
  begin_ = std::make_unique<SQLite::Statement>(*write_db_, "BEGIN IMMEDIATE");
  commit_ = std::make_unique<SQLite::Statement>(*write_db_, "COMMIT");
  rollback_ = std::make_unique<SQLite::Statement>(*write_db_, "ROLLBACK");
  checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

SqliteRecordStore::~SqliteRecordStore() {
  {
    std::lock_guard lock(checkpoint_mutex_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_one();
  checkpointer_.join();
}

void SqliteRecordStore::checkpoint_loop() {
  std::unique_lock lock(checkpoint_mutex_);
  std::uint64_t checkpointed = committed_;
  while (!stopping_) {
    checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(200));
    if (committed_ == checkpointed) continue;  // nothing new in the WAL: an idle server stays idle
    checkpointed = committed_;
    lock.unlock();
    try {
      // PASSIVE never blocks the writer; the writer starts the WAL afresh once everything was copied.
      checkpoint_db_->exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (const SQLite::Exception& e) {
      spdlog::warn("WAL checkpoint failed: {}", e.what());
    }
    lock.lock();
  }
}

std::vector<InboxEntry> SqliteRecordStore::inbox(const std::string& source, bool prefix) {
  std::lock_guard lock(read_mutex_);
  try {
    SQLite::Statement query(*read_db_, prefix ? "SELECT id, function, body, reply, source FROM inbox "
                                                "WHERE substr(source, 1, length(?1)) = ?1 ORDER BY rowid"
                                              : "SELECT id, function, body, reply, source FROM inbox "
                                                "WHERE source = ?1 ORDER BY rowid");
    query.bind(1, source);
    std::vector<InboxEntry> out;
    while (query.executeStep()) out.push_back(inbox_row(query));
    return out;
  } catch (const SQLite::Exception& e) {
    throw store_error("cannot read the inbox", e);
  }
}

std::optional<InboxEntry> SqliteRecordStore::inbox_entry(const std::string& id) {
  std::lock_guard lock(read_mutex_);
  try {
    SQLite::Statement query(*read_db_, "SELECT id, function, body, reply, source FROM inbox WHERE id = ?");
    query.bind(1, id);
    if (!query.executeStep()) return std::nullopt;
    return inbox_row(query);
  } catch (const SQLite::Exception& e) {
    throw store_error("cannot read the inbox", e);
  }
}

std::optional<std::string> SqliteRecordStore::keyed(const std::string& key, std::chrono::seconds window) {
  std::lock_guard lock(read_mutex_);
  try {
    SQLite::Statement query(*read_db_,
                            "SELECT id FROM idempotency_keys WHERE key = ? AND created_at > unixepoch() - ?");
    query.bind(1, key);
    query.bind(2, static_cast<std::int64_t>(window.count()));
    if (!query.executeStep()) return std::nullopt;
    return query.getColumn(0).getString();
  } catch (const SQLite::Exception& e) {
    throw store_error("cannot read the idempotency keys", e);
  }
}

std::optional<Error> SqliteRecordStore::commit(Batch& batch) {
  // A failed commit (disk full, a lock held past busy_timeout by another process) is retried; if it still fails,
  // the calls get store_unavailable: nobody is told of a result that has no record.
  for (int attempt = 1;; ++attempt) {
    auto run = [](SQLite::Statement& statement) {
      statement.exec();
      statement.reset();
    };
    try {
      run(*begin_);
      for (auto& accepting : batch.accepts) {
        const auto& entry = accepting.entry;
        auto& statement = entry.replace ? *replace_ : *accept_;
        statement.bindNoCopy(1, entry.id);
        statement.bindNoCopy(2, entry.source);
        statement.bindNoCopy(3, entry.function);
        statement.bindNoCopy(4, entry.body);
        statement.bindNoCopy(5, entry.reply.data(), static_cast<int>(entry.reply.size()));
        run(statement);
        if (!entry.key.empty()) {
          keep_key_->bindNoCopy(1, entry.key);
          keep_key_->bindNoCopy(2, entry.id);
          run(*keep_key_);
        }
      }
      for (auto& importing : batch.imports) {
        importing.added = 0;
        for (const auto& record : importing.records) {
          import_->bindNoCopy(1, record.id);
          import_->bindNoCopy(2, record.function);
          import_->bindNoCopy(3, record.json);
          importing.added += static_cast<std::size_t>(import_->exec());
          import_->reset();
        }
      }
      for (auto& pending : batch.records) {
        insert_->bindNoCopy(1, pending.record.id);
        insert_->bindNoCopy(2, pending.record.function);
        insert_->bindNoCopy(3, pending.json);
        insert_->exec();
        insert_->reset();
        if (retention_ != 0 && ++since_trim_[pending.record.function] >= retention_ / 10 + 1) {
          trim(pending.record.function);
        }
      }
      for (const auto& [id, done] : batch.settles) {
        settle_->bindNoCopy(1, id);
        run(*settle_);
      }
      run(*commit_);
      {
        std::lock_guard lock(checkpoint_mutex_);
        ++committed_;
      }
      return std::nullopt;
    } catch (const SQLite::Exception& e) {
      insert_->tryReset();
      accept_->tryReset();
      replace_->tryReset();
      keep_key_->tryReset();
      import_->tryReset();
      settle_->tryReset();
      begin_->tryReset();
      commit_->tryReset();
      if (sqlite3_get_autocommit(write_db_->getHandle()) == 0) {  // a transaction is still open
        try {
          run(*rollback_);
        } catch (const SQLite::Exception&) {
          rollback_->tryReset();
        }
      }
      if (attempt == 3) {
        spdlog::error("cannot commit {} invocation records and {} accepted requests ({}): their callers are told "
                      "the store is unavailable", batch.records.size(), batch.accepts.size(), e.what());
        return store_error("cannot record the invocation", e);
      }
      spdlog::warn("committing {} invocation records failed ({}), retrying", batch.records.size(), e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
    }
  }
}

void SqliteRecordStore::trim(const std::string& function) {
  since_trim_[function] = 0;
  SQLite::Statement drop(*write_db_,
                         "DELETE FROM invocations WHERE function = ?1 AND id <= (SELECT id FROM invocations "
                         "WHERE function = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)");
  drop.bind(1, function);
  drop.bind(2, static_cast<int64_t>(retention_));
  drop.exec();
}

std::vector<std::string> SqliteRecordStore::read(const std::string& function, std::size_t limit) {
  std::lock_guard lock(read_mutex_);
  try {
    SQLite::Statement query(*read_db_,
                            "SELECT record FROM (SELECT id, record FROM invocations WHERE function = ? "
                            "ORDER BY id DESC LIMIT ?) ORDER BY id");
    query.bind(1, function);
    query.bind(2, limit == 0 ? int64_t{-1} : static_cast<int64_t>(limit));
    std::vector<std::string> out;
    while (query.executeStep()) out.push_back(query.getColumn(0).getString());
    return out;
  } catch (const SQLite::Exception& e) {
    throw Error(ErrorCode::internal, std::string("cannot read invocation records: ") + e.what());
  }
}

std::optional<std::string> SqliteRecordStore::find(const std::string& invocation_id) {
  std::lock_guard lock(read_mutex_);
  try {
    SQLite::Statement query(*read_db_, "SELECT record FROM invocations WHERE id = ?");
    query.bind(1, invocation_id);
    if (!query.executeStep()) return std::nullopt;
    return query.getColumn(0).getString();
  } catch (const SQLite::Exception& e) {
    throw Error(ErrorCode::internal, std::string("cannot read an invocation record: ") + e.what());
  }
}

std::vector<Imported> SqliteRecordStore::read_after(const std::string& function, const std::string& after,
                                                      std::size_t limit) {
  std::lock_guard lock(read_mutex_);
  try {
    SQLite::Statement query(*read_db_, function.empty()
        ? "SELECT * FROM (SELECT id, function, record FROM invocations WHERE id > ?1 "
          "ORDER BY id DESC LIMIT ?3) ORDER BY id"
        : "SELECT * FROM (SELECT id, function, record FROM invocations WHERE function = ?2 AND id > ?1 "
          "ORDER BY id DESC LIMIT ?3) ORDER BY id");
    query.bind(1, after);
    if (!function.empty()) query.bind(2, function);
    query.bind(3, static_cast<int64_t>(limit));
    std::vector<Imported> out;
    while (query.executeStep()) {
      out.push_back({query.getColumn(0).getString(), query.getColumn(1).getString(), query.getColumn(2).getString()});
    }
    return out;
  } catch (const SQLite::Exception& e) {
    throw Error(ErrorCode::internal, std::string("cannot read invocation records: ") + e.what());
  }
}

}  // namespace faas::store
