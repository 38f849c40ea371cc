#include "store/database.hpp"

#include <set>

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include "faas/error.hpp"

namespace faas::store {

namespace {

constexpr int schema_version = 7;  // 2: the inbox; 3: settings and revisions; 4: versions; 5: schedule ticks;
                                   // 6: idempotency keys; 7: nodes

constexpr const char* schema = R"SQL(
CREATE TABLE IF NOT EXISTS functions (
  name         TEXT PRIMARY KEY,
  version      INTEGER NOT NULL,
  code         TEXT NOT NULL,
  requirements TEXT,             -- NULL when the function has none
  code_sha256  TEXT NOT NULL,
  env_id       TEXT NOT NULL,    -- '' without requirements
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  settings     TEXT NOT NULL DEFAULT '{}',  -- faas/function_settings.hpp, secrets included (the file is 0600)
  revision     INTEGER NOT NULL DEFAULT 0   -- registry_version at its last change of code or settings
);
-- One row per invocation; `record` is the record's JSON text exactly as it was answered. Ids grow with time
-- (util/ids.hpp), so both B-trees grow at their end, and ordering by id is ordering by start time. Two B-trees
-- per row, not three: each costs ~10 us in every commit here.
CREATE TABLE IF NOT EXISTS invocations (
  id       TEXT PRIMARY KEY,
  function TEXT NOT NULL,
  record   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations (function, id);
-- registry_version grows at every upload and delete, so other processes notice changes with one cheap read.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('registry_version', 0);
-- Every version of every function still kept (the newest --keep-versions, and the current one): a rollback or a
-- call pinned to a version reads its code here. Rows never change once written.
CREATE TABLE IF NOT EXISTS versions (
  name         TEXT NOT NULL,
  version      INTEGER NOT NULL,
  code         TEXT NOT NULL,
  requirements TEXT,
  code_sha256  TEXT NOT NULL,
  env_id       TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  PRIMARY KEY (name, version)
) WITHOUT ROWID;
-- The schedule ticks fired (function, entry of its schedule, minute since the epoch): whoever inserts one fires it.
CREATE TABLE IF NOT EXISTS schedule_ticks (
  function TEXT NOT NULL,
  entry    INTEGER NOT NULL,
  minute   INTEGER NOT NULL,
  PRIMARY KEY (function, entry, minute)
) WITHOUT ROWID;
-- Requests a frontend acknowledged and has not answered yet (store/record_log.hpp), oldest first by rowid.
-- `id` is the invocation id the request's record gets; `reply` says where the answer goes, in the frontend's terms.
CREATE TABLE IF NOT EXISTS inbox (
  id       TEXT NOT NULL UNIQUE,
  source   TEXT NOT NULL,
  function TEXT NOT NULL,
  body     TEXT NOT NULL,
  reply    BLOB NOT NULL
);
-- The idempotency key of each asynchronous call that had one, and the call it started (Engine::submit_async).
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key        TEXT PRIMARY KEY,
  id         TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
-- Each server using this file, with its last heartbeat (seconds since the epoch) and what it reported then.
CREATE TABLE IF NOT EXISTS nodes (
  id         TEXT PRIMARY KEY,
  started_at TEXT NOT NULL,
  seen_at    REAL NOT NULL,
  status     TEXT NOT NULL
) WITHOUT ROWID;
)SQL";

// A database made by an older libfaas has the table without the columns added since.
void add_missing_columns(SQLite::Database& db) {
  std::set<std::string> columns;
  SQLite::Statement info(db, "PRAGMA table_info(functions)");
  while (info.executeStep()) columns.insert(info.getColumn(1).getString());
  if (columns.count("settings") == 0) db.exec("ALTER TABLE functions ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'");
  if (columns.count("revision") == 0) db.exec("ALTER TABLE functions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0");
}

}  // namespace

Error store_error(const std::string& what, const SQLite::Exception& e) {
  switch (e.getErrorCode()) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
      return Error(ErrorCode::store_unavailable, what + ": " + e.what());
    default:
      return Error(ErrorCode::internal, what + ": " + e.what());
  }
}

std::unique_ptr<SQLite::Database> open_database(const std::filesystem::path& file) {
  try {
    auto db = std::make_unique<SQLite::Database>(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE |
                                                                    SQLite::OPEN_NOMUTEX);
    db->setBusyTimeout(10000);
    db->exec("PRAGMA journal_mode=WAL");
    // NORMAL in WAL: a commit survives a crash of the process (kill -9), not a power cut; see docs/architecture.md.
    db->exec("PRAGMA synchronous=NORMAL");
    db->exec("PRAGMA foreign_keys=ON");
    int version = db->execAndGet("PRAGMA user_version").getInt();
    if (version > schema_version) {
      throw Error(ErrorCode::internal, file.string() + " was written by a newer libfaas (schema " +
                                           std::to_string(version) + ")");
    }
    if (version < schema_version) {
      WriteTransaction transaction(*db);
      db->exec(schema);
      add_missing_columns(*db);
      // Functions uploaded before versions were kept start their history with their current version.
      db->exec("INSERT OR IGNORE INTO versions SELECT name, version, code, requirements, code_sha256, env_id, "
               "updated_at FROM functions");
      db->exec("PRAGMA user_version=" + std::to_string(schema_version));
      transaction.commit();
    }
    // Every function's code and every record: the owner's alone (SQLite gives its -wal and -shm the same mode).
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::path part = file.string() + suffix;
      if (std::filesystem::exists(part, ec)) {
        std::filesystem::permissions(part, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
      }
    }
    return db;
  } catch (const SQLite::Exception& e) {
    throw Error(ErrorCode::internal, "cannot open " + file.string() + ": " + e.what());
  }
}

WriteTransaction::WriteTransaction(SQLite::Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

WriteTransaction::~WriteTransaction() {
  if (done_) return;
  try {
    db_.exec("ROLLBACK");
  } catch (const SQLite::Exception& e) {
    spdlog::error("rollback failed: {}", e.what());
  }
}

void WriteTransaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace faas::store
