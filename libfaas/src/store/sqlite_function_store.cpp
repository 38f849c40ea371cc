#include "store/sqlite_function_store.hpp"

#include <algorithm>

#include "faas/error.hpp"
#include "store/database.hpp"

namespace faas::store {

namespace {

constexpr const char* info_columns =
    "name, version, created_at, updated_at, requirements IS NOT NULL, code_sha256, env_id, revision";

FunctionInfo read_info(SQLite::Statement& row) {
  FunctionInfo info;
  info.name = row.getColumn(0).getString();
  info.version = static_cast<std::uint64_t>(row.getColumn(1).getInt64());
  info.created_at = row.getColumn(2).getString();
  info.updated_at = row.getColumn(3).getString();
  info.has_requirements = row.getColumn(4).getInt() != 0;
  info.code_sha256 = row.getColumn(5).getString();
  info.env_id = row.getColumn(6).getString();
  info.revision = static_cast<std::uint64_t>(row.getColumn(7).getInt64());
  return info;
}

template <class F>
auto guarded(const char* what, F&& body) {
  try {
    return body();
  } catch (const SQLite::Exception& e) {
    throw store_error(what, e);
  }
}

// Binds a version's name, number, code, requirements, code hash and virtualenv id as parameters 1 to 6.
void bind_version(SQLite::Statement& statement, const FunctionInfo& info, const std::string& code,
                  const std::optional<std::string>& requirements) {
  statement.bind(1, info.name);
  statement.bind(2, static_cast<int64_t>(info.version));
  statement.bind(3, code);
  if (requirements) {
    statement.bind(4, *requirements);
  } else {
    statement.bind(4);
  }
  statement.bind(5, info.code_sha256);
  statement.bind(6, info.env_id);
}

// Counts a change of the registry (other processes poll the count) and returns the new count, the revision of
// what changed. Inside a write transaction.
std::uint64_t next_revision(SQLite::Database& db) {
  db.exec("UPDATE meta SET value = value + 1 WHERE key = 'registry_version'");
  return static_cast<std::uint64_t>(db.execAndGet("SELECT value FROM meta WHERE key = 'registry_version'").getInt64());
}

}  // namespace

SqliteFunctionStore::SqliteFunctionStore(const std::filesystem::path& db_file) : db_(open_database(db_file)) {}

std::uint64_t SqliteFunctionStore::registry_version() {
  std::lock_guard lock(mutex_);
  return guarded("cannot read the registry version", [&] {
    return static_cast<std::uint64_t>(
        db_->execAndGet("SELECT value FROM meta WHERE key = 'registry_version'").getInt64());
  });
}

std::vector<FunctionInfo> SqliteFunctionStore::list() {
  std::lock_guard lock(mutex_);
  return guarded("cannot list functions", [&] {
    std::vector<FunctionInfo> out;
    SQLite::Statement query(*db_, std::string("SELECT ") + info_columns + " FROM functions ORDER BY name");
    while (query.executeStep()) out.push_back(read_info(query));
    return out;
  });
}

std::optional<FunctionInfo> SqliteFunctionStore::find(const std::string& name) {
  std::lock_guard lock(mutex_);
  return guarded("cannot read a function", [&]() -> std::optional<FunctionInfo> {
    SQLite::Statement query(*db_, std::string("SELECT ") + info_columns + " FROM functions WHERE name = ?");
    query.bind(1, name);
    if (!query.executeStep()) return std::nullopt;
    return read_info(query);
  });
}

std::optional<FunctionSource> SqliteFunctionStore::source(const std::string& name) {
  std::lock_guard lock(mutex_);
  return guarded("cannot read a function's code", [&]() -> std::optional<FunctionSource> {
    SQLite::Statement query(*db_, "SELECT code, requirements FROM functions WHERE name = ?");
    query.bind(1, name);
    if (!query.executeStep()) return std::nullopt;
    FunctionSource out{query.getColumn(0).getString(), std::nullopt};
    if (!query.getColumn(1).isNull()) out.requirements = query.getColumn(1).getString();
    return out;
  });
}

FunctionInfo SqliteFunctionStore::put(FunctionInfo info, const std::string& code,
                                const std::optional<std::string>& requirements, const FunctionSettings* settings,
                                std::size_t keep_versions) {
  std::lock_guard lock(mutex_);
  return guarded("cannot save the function", [&] {
    WriteTransaction transaction(*db_);
    SQLite::Statement created(*db_, "SELECT created_at, revision FROM functions WHERE name = ?");
    created.bind(1, info.name);
    bool newer_there = false;
    if (created.executeStep()) {
      info.created_at = created.getColumn(0).getString();
      newer_there = static_cast<std::uint64_t>(created.getColumn(1).getInt64()) >= info.revision;
    }
    auto counted = next_revision(*db_);  // other processes notice the change
    // Another process's upload, begun after ours, committed first: ours, committed last, is the current one, so it
    // takes a revision above (every process keeps the function of the highest revision).
    if (newer_there) info.revision = counted;
    SQLite::Statement upsert(*db_,
                             "INSERT INTO functions (name, version, code, requirements, code_sha256, env_id, "
                             "created_at, updated_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET version = excluded.version, code = excluded.code, "
                             "requirements = excluded.requirements, code_sha256 = excluded.code_sha256, "
                             "env_id = excluded.env_id, updated_at = excluded.updated_at, "
                             "revision = excluded.revision");
    bind_version(upsert, info, code, requirements);
    upsert.bind(7, info.created_at);
    upsert.bind(8, info.updated_at);
    upsert.bind(9, static_cast<int64_t>(info.revision));
    upsert.exec();
    if (settings != nullptr) {
      SQLite::Statement update(*db_, "UPDATE functions SET settings = ? WHERE name = ?");
      update.bind(1, to_stored(*settings));
      update.bind(2, info.name);
      update.exec();
    }
    SQLite::Statement keep(*db_,
                           "INSERT OR IGNORE INTO versions (name, version, code, requirements, code_sha256, env_id, "
                           "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
    bind_version(keep, info, code, requirements);
    keep.bind(7, info.updated_at);
    keep.exec();
    SQLite::Statement prune(*db_,
                            "DELETE FROM versions WHERE name = ?1 AND version != ?2 AND version NOT IN "
                            "(SELECT version FROM versions WHERE name = ?1 ORDER BY version DESC LIMIT ?3)");
    prune.bind(1, info.name);
    prune.bind(2, static_cast<int64_t>(info.version));
    prune.bind(3, static_cast<int64_t>(std::max<std::size_t>(1, keep_versions)));
    prune.exec();
    transaction.commit();
    info.has_requirements = requirements.has_value();
    return info;
  });
}

std::uint64_t SqliteFunctionStore::reserve_revision() {
  std::lock_guard lock(mutex_);
  return guarded("cannot count a change of the registry", [&] {
    WriteTransaction transaction(*db_);
    auto revision = next_revision(*db_);
    transaction.commit();
    return revision;
  });
}

bool SqliteFunctionStore::claim_tick(const std::string& name, std::size_t entry, std::int64_t minute) {
  std::lock_guard lock(mutex_);
  return guarded("cannot claim a schedule's tick", [&] {
    SQLite::Statement claim(*db_, "INSERT OR IGNORE INTO schedule_ticks (function, entry, minute) VALUES (?, ?, ?)");
    claim.bind(1, name);
    claim.bind(2, static_cast<int64_t>(entry));
    claim.bind(3, static_cast<int64_t>(minute));
    return claim.exec() == 1;
  });
}

void SqliteFunctionStore::forget_ticks_before(std::int64_t minute) {
  std::lock_guard lock(mutex_);
  guarded("cannot forget old schedule ticks", [&] {
    SQLite::Statement forget(*db_, "DELETE FROM schedule_ticks WHERE minute < ?");
    forget.bind(1, static_cast<int64_t>(minute));
    forget.exec();
  });
}

std::uint64_t SqliteFunctionStore::next_version(const std::string& name) {
  std::lock_guard lock(mutex_);
  return guarded("cannot read a function's versions", [&] {
    SQLite::Statement query(*db_,
                            "SELECT max(coalesce((SELECT max(version) FROM versions WHERE name = ?1), 0), "
                            "coalesce((SELECT version FROM functions WHERE name = ?1), 0))");
    query.bind(1, name);
    query.executeStep();
    return static_cast<std::uint64_t>(query.getColumn(0).getInt64()) + 1;
  });
}

std::vector<FunctionVersion> SqliteFunctionStore::versions(const std::string& name) {
  std::lock_guard lock(mutex_);
  return guarded("cannot read a function's versions", [&] {
    std::vector<FunctionVersion> out;
    SQLite::Statement query(*db_,
                            "SELECT v.version, v.created_at, v.requirements IS NOT NULL, v.code_sha256, v.env_id, "
                            "v.version = f.version FROM versions v JOIN functions f ON f.name = v.name "
                            "WHERE v.name = ? ORDER BY v.version DESC");
    query.bind(1, name);
    while (query.executeStep()) {
      FunctionVersion version;
      version.version = static_cast<std::uint64_t>(query.getColumn(0).getInt64());
      version.created_at = query.getColumn(1).getString();
      version.has_requirements = query.getColumn(2).getInt() != 0;
      version.code_sha256 = query.getColumn(3).getString();
      version.env_id = query.getColumn(4).getString();
      version.current = query.getColumn(5).getInt() != 0;
      out.push_back(std::move(version));
    }
    return out;
  });
}

std::optional<VersionRow> SqliteFunctionStore::version(const std::string& name, std::uint64_t version) {
  std::lock_guard lock(mutex_);
  return guarded("cannot read a function's version", [&]() -> std::optional<VersionRow> {
    SQLite::Statement query(*db_,
                            "SELECT created_at, code, requirements, code_sha256, env_id FROM versions "
                            "WHERE name = ? AND version = ?");
    query.bind(1, name);
    query.bind(2, static_cast<int64_t>(version));
    if (!query.executeStep()) return std::nullopt;
    VersionRow row;
    row.info.version = version;
    row.info.created_at = query.getColumn(0).getString();
    row.source.code = query.getColumn(1).getString();
    if (!query.getColumn(2).isNull()) row.source.requirements = query.getColumn(2).getString();
    row.info.has_requirements = row.source.requirements.has_value();
    row.info.code_sha256 = query.getColumn(3).getString();
    row.info.env_id = query.getColumn(4).getString();
    return row;
  });
}

std::optional<FunctionSettings> SqliteFunctionStore::settings(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto text = guarded("cannot read a function's settings", [&]() -> std::optional<std::string> {
    SQLite::Statement query(*db_, "SELECT settings FROM functions WHERE name = ?");
    query.bind(1, name);
    if (!query.executeStep()) return std::nullopt;
    return query.getColumn(0).getString();
  });
  if (!text) return std::nullopt;
  return from_stored(*text);
}

bool SqliteFunctionStore::save_settings(const std::string& name, const FunctionSettings& settings, std::uint64_t revision) {
  std::lock_guard lock(mutex_);
  return guarded("cannot save the function's settings", [&] {
    WriteTransaction transaction(*db_);
    SQLite::Statement update(*db_, "UPDATE functions SET settings = ?, revision = ? WHERE name = ?");
    update.bind(1, to_stored(settings));
    update.bind(2, static_cast<int64_t>(revision));
    update.bind(3, name);
    if (update.exec() == 0) return false;
    next_revision(*db_);  // other processes notice the change
    transaction.commit();
    return true;
  });
}

bool SqliteFunctionStore::remove(const std::string& name) {
  std::lock_guard lock(mutex_);
  return guarded("cannot delete the function", [&] {
    WriteTransaction transaction(*db_);
    SQLite::Statement drop(*db_, "DELETE FROM functions WHERE name = ?");
    drop.bind(1, name);
    if (drop.exec() == 0) return false;
    SQLite::Statement records(*db_, "DELETE FROM invocations WHERE function = ?");
    records.bind(1, name);
    records.exec();
    SQLite::Statement versions(*db_, "DELETE FROM versions WHERE name = ?");
    versions.bind(1, name);
    versions.exec();
    db_->exec("UPDATE meta SET value = value + 1 WHERE key = 'registry_version'");
    transaction.commit();
    return true;
  });
}

void SqliteFunctionStore::heartbeat(const std::string& node, const std::string& started_at, const std::string& status) {
  std::lock_guard lock(mutex_);
  guarded("cannot write this node's heartbeat", [&] {
    SQLite::Statement beat(*db_,
                           "INSERT INTO nodes (id, started_at, seen_at, status) VALUES (?, ?, (julianday('now') - 2440587.5) * 86400, ?) "
                           "ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, "
                           "seen_at = excluded.seen_at, status = excluded.status");
    beat.bind(1, node);
    beat.bind(2, started_at);
    beat.bind(3, status);
    beat.exec();
  });
}

std::vector<NodeRow> SqliteFunctionStore::nodes(std::chrono::seconds window) {
  std::lock_guard lock(mutex_);
  return guarded("cannot read the nodes", [&] {
    std::vector<NodeRow> out;
    SQLite::Statement query(*db_,
                            "SELECT id, started_at, seen_at, "
                            "(julianday('now') - 2440587.5) * 86400 - seen_at, status FROM nodes "
                            "WHERE seen_at > unixepoch() - ? ORDER BY id");
    query.bind(1, static_cast<std::int64_t>(window.count()));
    while (query.executeStep()) {
      out.push_back({query.getColumn(0).getString(), query.getColumn(1).getString(), query.getColumn(2).getDouble(),
                     query.getColumn(3).getDouble(), query.getColumn(4).getString()});
    }
    return out;
  });
}

void SqliteFunctionStore::leave(const std::string& node) {
  std::lock_guard lock(mutex_);
  guarded("cannot remove this node", [&] {
    SQLite::Statement drop(*db_, "DELETE FROM nodes WHERE id = ?");
    drop.bind(1, node);
    drop.exec();
  });
}

}  // namespace faas::store
