// Opening <data-dir>/faas.db: WAL mode, the schema, and the settings every connection needs.
//
// Each thread that writes owns its own connection; SQLite's WAL lets readers run beside the one writer, and
// several processes may share the file (they wait for each other's write lock up to busy_timeout).
#pragma once

#include <filesystem>
#include <memory>

#include <SQLiteCpp/SQLiteCpp.h>

#include "faas/error.hpp"

namespace faas::store {

// Opens a connection, creating the file and schema on first use. Throws Error(internal) when the file cannot be
// opened or was written by a newer libfaas.
std::unique_ptr<SQLite::Database> open_database(const std::filesystem::path& file);

// The Error for a failed database operation: store_unavailable when the disk or a lock is to blame (full, I/O
// error, read-only, busy past the timeout), internal otherwise.
Error store_error(const std::string& what, const SQLite::Exception& e);

// RAII transaction that begins IMMEDIATE (takes the write lock up front, so it never fails half-way on a lock
// upgrade) and rolls back unless committed.
class WriteTransaction {
 public:
  explicit WriteTransaction(SQLite::Database& db);
  ~WriteTransaction();
  void commit();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

 private:
  SQLite::Database& db_;
  bool done_ = false;
};

}  // namespace faas::store
