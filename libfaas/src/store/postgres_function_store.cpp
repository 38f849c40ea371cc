#include "store/postgres_function_store.hpp"

#include <poll.h>

#include <algorithm>

#include <spdlog/spdlog.h>

namespace faas::store {

namespace {

constexpr std::int64_t schema_version = 1;
constexpr std::int64_t schema_lock = 0x6661617301;  // pg_advisory_xact_lock key: "faas" + 1

// The same tables as the SQLite store (database.cpp), in PostgreSQL's types. Ids compare bytewise ("C"), as in
// SQLite, so that ordering by id is ordering by time whatever the database's collation.
constexpr const char* schema = R"SQL(
CREATE TABLE IF NOT EXISTS functions (
  name         TEXT COLLATE "C" PRIMARY KEY,
  version      BIGINT NOT NULL,
  code         TEXT NOT NULL,
  requirements TEXT,
  code_sha256  TEXT NOT NULL,
  env_id       TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  settings     TEXT NOT NULL DEFAULT '{}',
  revision     BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS invocations (
  id       TEXT COLLATE "C" PRIMARY KEY,
  function TEXT COLLATE "C" NOT NULL,
  record   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations (function, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta (key, value) VALUES ('registry_version', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS versions (
  name         TEXT COLLATE "C" NOT NULL,
  version      BIGINT NOT NULL,
  code         TEXT NOT NULL,
  requirements TEXT,
  code_sha256  TEXT NOT NULL,
  env_id       TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS schedule_ticks (
  function TEXT NOT NULL,
  entry    BIGINT NOT NULL,
  minute   BIGINT NOT NULL,
  PRIMARY KEY (function, entry, minute)
);
-- The inbox (requests acknowledged and not answered yet, and asynchronous calls): each entry belongs to the node
-- that took it for as long as that node's heartbeats in `nodes` go on; then any other node may take it.
CREATE TABLE IF NOT EXISTS inbox (
  seq         BIGSERIAL PRIMARY KEY,
  id          TEXT COLLATE "C" NOT NULL UNIQUE,
  source      TEXT COLLATE "C" NOT NULL,
  function    TEXT NOT NULL,
  body        TEXT NOT NULL,
  reply       BYTEA NOT NULL,
  node        TEXT
);
CREATE INDEX IF NOT EXISTS inbox_by_source ON inbox (source, seq);
CREATE INDEX IF NOT EXISTS inbox_by_node ON inbox (node);
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key        TEXT PRIMARY KEY,
  id         TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
  id         TEXT PRIMARY KEY,
  started_at TEXT NOT NULL,
  seen_at    TIMESTAMPTZ NOT NULL,
  status     TEXT NOT NULL
);
)SQL";

constexpr const char* info_columns =
    "name, version, created_at, updated_at, requirements IS NOT NULL, code_sha256, env_id, revision";

FunctionInfo read_info(const pg::Result& rows, int row) {
  FunctionInfo info;
  info.name = pg::text(rows, row, 0);
  info.version = static_cast<std::uint64_t>(pg::integer(rows, row, 1));
  info.created_at = pg::text(rows, row, 2);
  info.updated_at = pg::text(rows, row, 3);
  info.has_requirements = pg::text(rows, row, 4) == "t";
  info.code_sha256 = pg::text(rows, row, 5);
  info.env_id = pg::text(rows, row, 6);
  info.revision = static_cast<std::uint64_t>(pg::integer(rows, row, 7));
  return info;
}

// PostgreSQL's text holds UTF-8 without NUL: code in another encoding cannot be kept there.
void check_text(const std::string& text, const char* what) {
  if (!pg::is_valid_utf8(text)) {
    throw Error(ErrorCode::invalid_input, std::string(what) + " must be UTF-8 text without NUL characters");
  }
}

std::uint64_t next_revision(pg::Connection& db) {
  auto row = db.exec("cannot count a change of the registry",
                     "UPDATE meta SET value = value + 1 WHERE key = 'registry_version' RETURNING value");
  return static_cast<std::uint64_t>(pg::integer(row, 0, 0));
}

void notify_change(pg::Connection& db, const std::string& name) {
  db.exec("cannot announce a change of the registry", "SELECT pg_notify('faas_registry', $1)", {name});
}

}  // namespace

void create_postgres_schema(pg::Connection& db) {
  db.exec("cannot create the tables", "BEGIN");
  try {
    // Nodes starting together would race on CREATE ... IF NOT EXISTS: one at a time.
    db.exec("cannot create the tables", "SELECT pg_advisory_xact_lock(" + std::to_string(schema_lock) + ")");
    db.exec_script("cannot create the tables", schema);
    auto found = db.exec("cannot read the schema version", "SELECT value FROM meta WHERE key = 'schema'");
    if (PQntuples(found.get()) == 1 && pg::integer(found, 0, 0) > schema_version) {
      throw Error(ErrorCode::internal, "the database was written by a newer libfaas (schema " +
                                           pg::text(found, 0, 0) + ")");
    }
    db.exec("cannot create the tables",
            "INSERT INTO meta (key, value) VALUES ('schema', " + std::to_string(schema_version) +
                ") ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    db.exec("cannot create the tables", "COMMIT");
  } catch (...) {
    if (!db.lost()) PQclear(PQexec(db.raw(), "ROLLBACK"));
    throw;
  }
}

PostgresFunctionStore::PostgresFunctionStore(const std::string& uri) : uri_(uri), db_(uri) {
  create_postgres_schema(db_);
  listener_ = std::thread([this] { listen_loop(); });
}

PostgresFunctionStore::~PostgresFunctionStore() {
  stopping_ = true;
  if (listener_.joinable()) listener_.join();
}

template <class Body>
auto PostgresFunctionStore::transaction(const char* what, Body&& body) {
  db_.exec(what, "BEGIN");
  try {
    auto out = body();
    db_.exec(what, "COMMIT");
    return out;
  } catch (...) {
    if (!db_.lost()) PQclear(PQexec(db_.raw(), "ROLLBACK"));
    throw;
  }
}

void PostgresFunctionStore::on_change(std::function<void()> changed) {
  std::lock_guard lock(changed_mutex_);
  changed_ = std::move(changed);
}

void PostgresFunctionStore::on_released(std::function<void()> released) {
  std::lock_guard lock(changed_mutex_);
  released_ = std::move(released);
}

void PostgresFunctionStore::listen_loop() {
  std::unique_ptr<pg::Connection> listener;
  auto announce = [this] {
    std::lock_guard lock(changed_mutex_);
    if (changed_) changed_();
  };
  bool was_lost = false;
  while (!stopping_) {
    try {
      if (!listener || listener->lost()) {
        if (listener && !listener->reconnect()) throw Error(ErrorCode::store_unavailable, "still unreachable");
        if (!listener) listener = std::make_unique<pg::Connection>(uri_);
        listener->exec("cannot listen for registry changes", "LISTEN faas_registry");
        listener->exec("cannot listen for released inbox entries", "LISTEN faas_inbox");
        if (was_lost) announce();  // anything may have changed while we could not hear
        was_lost = false;
      }
      pollfd wait{PQsocket(listener->raw()), POLLIN, 0};
      if (::poll(&wait, 1, 250) <= 0) continue;
      if (PQconsumeInput(listener->raw()) == 0) throw Error(ErrorCode::store_unavailable, "connection lost");
      bool changed = false, released = false;
      while (PGnotify* note = PQnotifies(listener->raw())) {
        (std::string_view(note->relname) == "faas_inbox" ? released : changed) = true;
        PQfreemem(note);
      }
      if (changed) announce();
      if (released) {
        std::lock_guard lock(changed_mutex_);
        if (released_) released_();
      }
    } catch (const Error& e) {
      if (!was_lost) spdlog::warn("not hearing registry changes from PostgreSQL ({}); retrying", e.what());
      was_lost = true;
      for (int i = 0; i < 4 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
}

std::uint64_t PostgresFunctionStore::registry_version() {
  std::lock_guard lock(mutex_);
  auto row = db_.exec("cannot read the registry version", "SELECT value FROM meta WHERE key = 'registry_version'");
  return static_cast<std::uint64_t>(pg::integer(row, 0, 0));
}

std::vector<FunctionInfo> PostgresFunctionStore::list() {
  std::lock_guard lock(mutex_);
  auto rows =
      db_.exec("cannot list functions", std::string("SELECT ") + info_columns + " FROM functions ORDER BY name");
  std::vector<FunctionInfo> out;
  for (int row = 0; row < PQntuples(rows.get()); ++row) out.push_back(read_info(rows, row));
  return out;
}

std::optional<FunctionInfo> PostgresFunctionStore::find(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto rows = db_.exec("cannot read a function",
                       std::string("SELECT ") + info_columns + " FROM functions WHERE name = $1", {name});
  if (PQntuples(rows.get()) == 0) return std::nullopt;
  return read_info(rows, 0);
}

std::optional<FunctionSource> PostgresFunctionStore::source(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto rows = db_.exec("cannot read a function's code", "SELECT code, requirements FROM functions WHERE name = $1",
                       {name});
  if (PQntuples(rows.get()) == 0) return std::nullopt;
  FunctionSource out{pg::text(rows, 0, 0), std::nullopt};
  if (!pg::is_null(rows, 0, 1)) out.requirements = pg::text(rows, 0, 1);
  return out;
}

std::optional<FunctionSettings> PostgresFunctionStore::settings(const std::string& name) {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    auto rows = db_.exec("cannot read a function's settings", "SELECT settings FROM functions WHERE name = $1", {name});
    if (PQntuples(rows.get()) == 0) return std::nullopt;
    text = pg::text(rows, 0, 0);
  }
  return from_stored(text);
}

bool PostgresFunctionStore::claim_tick(const std::string& name, std::size_t entry, std::int64_t minute) {
  std::lock_guard lock(mutex_);
  auto entry_text = std::to_string(entry), minute_text = std::to_string(minute);
  auto done = db_.exec("cannot claim a schedule's tick",
                       "INSERT INTO schedule_ticks (function, entry, minute) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                       {name, entry_text, minute_text});
  return pg::Connection::changed(done) == 1;
}

void PostgresFunctionStore::forget_ticks_before(std::int64_t minute) {
  std::lock_guard lock(mutex_);
  db_.exec("cannot forget old schedule ticks", "DELETE FROM schedule_ticks WHERE minute < $1",
           {std::to_string(minute)});
}

std::uint64_t PostgresFunctionStore::reserve_revision() {
  std::lock_guard lock(mutex_);
  return next_revision(db_);  // one statement: its own transaction
}

std::uint64_t PostgresFunctionStore::next_version(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto row = db_.exec("cannot read a function's versions",
                      "SELECT greatest(coalesce((SELECT max(version) FROM versions WHERE name = $1), 0), "
                      "coalesce((SELECT version FROM functions WHERE name = $1), 0))",
                      {name});
  return static_cast<std::uint64_t>(pg::integer(row, 0, 0)) + 1;
}

std::vector<FunctionVersion> PostgresFunctionStore::versions(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto rows = db_.exec("cannot read a function's versions",
                       "SELECT v.version, v.created_at, v.requirements IS NOT NULL, v.code_sha256, v.env_id, "
                       "v.version = f.version FROM versions v JOIN functions f ON f.name = v.name "
                       "WHERE v.name = $1 ORDER BY v.version DESC",
                       {name});
  std::vector<FunctionVersion> out;
  for (int row = 0; row < PQntuples(rows.get()); ++row) {
    FunctionVersion version;
    version.version = static_cast<std::uint64_t>(pg::integer(rows, row, 0));
    version.created_at = pg::text(rows, row, 1);
    version.has_requirements = pg::text(rows, row, 2) == "t";
    version.code_sha256 = pg::text(rows, row, 3);
    version.env_id = pg::text(rows, row, 4);
    version.current = pg::text(rows, row, 5) == "t";
    out.push_back(std::move(version));
  }
  return out;
}

std::optional<VersionRow> PostgresFunctionStore::version(const std::string& name, std::uint64_t version) {
  std::lock_guard lock(mutex_);
  auto rows = db_.exec("cannot read a function's version",
                       "SELECT created_at, code, requirements, code_sha256, env_id FROM versions "
                       "WHERE name = $1 AND version = $2",
                       {name, std::to_string(version)});
  if (PQntuples(rows.get()) == 0) return std::nullopt;
  VersionRow row;
  row.info.version = version;
  row.info.created_at = pg::text(rows, 0, 0);
  row.source.code = pg::text(rows, 0, 1);
  if (!pg::is_null(rows, 0, 2)) row.source.requirements = pg::text(rows, 0, 2);
  row.info.has_requirements = row.source.requirements.has_value();
  row.info.code_sha256 = pg::text(rows, 0, 3);
  row.info.env_id = pg::text(rows, 0, 4);
  return row;
}

FunctionInfo PostgresFunctionStore::put(FunctionInfo info, const std::string& code,
                                        const std::optional<std::string>& requirements,
                                        const FunctionSettings* settings, std::size_t keep_versions) {
  check_text(code, "func.py");
  if (requirements) check_text(*requirements, "requirements.txt");
  std::lock_guard lock(mutex_);
  const char* what = "cannot save the function";
  return transaction(what, [&] {
    // One upload of a name at a time across the cluster (a new name has no row to lock yet).
    db_.exec(what, "SELECT pg_advisory_xact_lock(hashtext($1))", {info.name});
    auto created = db_.exec(what, "SELECT created_at, revision FROM functions WHERE name = $1", {info.name});
    bool newer_there = false;
    if (PQntuples(created.get()) == 1) {
      info.created_at = pg::text(created, 0, 0);
      newer_there = static_cast<std::uint64_t>(pg::integer(created, 0, 1)) >= info.revision;
    }
    // Another node committed an upload of this name since our number was chosen: ours becomes the next one.
    auto taken = db_.exec(what, "SELECT code_sha256 FROM versions WHERE name = $1 AND version = $2",
                          {info.name, std::to_string(info.version)});
    bool renumbered = PQntuples(taken.get()) == 1 && pg::text(taken, 0, 0) != info.code_sha256;
    if (renumbered) {
      auto next = db_.exec(what,
                           "SELECT greatest(coalesce((SELECT max(version) FROM versions WHERE name = $1), 0), "
                           "coalesce((SELECT version FROM functions WHERE name = $1), 0)) + 1",
                           {info.name});
      info.version = static_cast<std::uint64_t>(pg::integer(next, 0, 0));
    }
    auto counted = next_revision(db_);
    // An upload that reserved its revision after ours committed first: ours, committed last, is the current one,
    // so it takes a revision above (every node keeps the function of the highest revision). Renumbered, it
    // takes one too, so that what was loaded under the old number is loaded again under the new.
    if (newer_there || renumbered) info.revision = counted;
    auto version = std::to_string(info.version), revision = std::to_string(info.revision);
    pg::Param reqs = requirements ? pg::Param(*requirements) : std::nullopt;
    db_.exec(what,
             "INSERT INTO functions (name, version, code, requirements, code_sha256, env_id, created_at, updated_at, "
             "revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
             "ON CONFLICT (name) DO UPDATE SET version = excluded.version, code = excluded.code, "
             "requirements = excluded.requirements, code_sha256 = excluded.code_sha256, env_id = excluded.env_id, "
             "updated_at = excluded.updated_at, revision = excluded.revision",
             {info.name, version, code, reqs, info.code_sha256, info.env_id, info.created_at, info.updated_at,
              revision});
    if (settings != nullptr) {
      db_.exec(what, "UPDATE functions SET settings = $1 WHERE name = $2", {to_stored(*settings), info.name});
    }
    db_.exec(what,
             "INSERT INTO versions (name, version, code, requirements, code_sha256, env_id, created_at) "
             "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
             {info.name, version, code, reqs, info.code_sha256, info.env_id, info.updated_at});
    db_.exec(what,
             "DELETE FROM versions WHERE name = $1 AND version <> $2 AND version NOT IN "
             "(SELECT version FROM versions WHERE name = $1 ORDER BY version DESC LIMIT $3)",
             {info.name, version, std::to_string(std::max<std::size_t>(1, keep_versions))});
    notify_change(db_, info.name);
    info.has_requirements = requirements.has_value();
    return info;
  });
}

bool PostgresFunctionStore::save_settings(const std::string& name, const FunctionSettings& settings,
                                          std::uint64_t revision) {
  std::lock_guard lock(mutex_);
  const char* what = "cannot save the function's settings";
  return transaction(what, [&] {
    auto updated = db_.exec(what, "UPDATE functions SET settings = $1, revision = $2 WHERE name = $3",
                            {to_stored(settings), std::to_string(revision), name});
    if (pg::Connection::changed(updated) == 0) return false;
    next_revision(db_);
    notify_change(db_, name);
    return true;
  });
}

bool PostgresFunctionStore::remove(const std::string& name) {
  std::lock_guard lock(mutex_);
  const char* what = "cannot delete the function";
  return transaction(what, [&] {
    auto dropped = db_.exec(what, "DELETE FROM functions WHERE name = $1", {name});
    if (pg::Connection::changed(dropped) == 0) return false;
    db_.exec(what, "DELETE FROM invocations WHERE function = $1", {name});
    db_.exec(what, "DELETE FROM versions WHERE name = $1", {name});
    next_revision(db_);
    notify_change(db_, name);
    return true;
  });
}

void PostgresFunctionStore::heartbeat(const std::string& node, const std::string& started_at,
                                      const std::string& status) {
  std::lock_guard lock(mutex_);
  db_.exec("cannot write this node's heartbeat",
           "INSERT INTO nodes (id, started_at, seen_at, status) VALUES ($1, $2, now(), $3) "
           "ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, seen_at = excluded.seen_at, "
           "status = excluded.status",
           {node, started_at, status});
}

std::vector<NodeRow> PostgresFunctionStore::nodes(std::chrono::seconds window) {
  std::lock_guard lock(mutex_);
  auto rows = db_.exec("cannot read the nodes",
                       "SELECT id, started_at, extract(epoch FROM seen_at), extract(epoch FROM now() - seen_at), "
                       "status FROM nodes WHERE seen_at > now() - make_interval(secs => $1) ORDER BY id",
                       {std::to_string(window.count())});
  std::vector<NodeRow> out;
  for (int row = 0; row < PQntuples(rows.get()); ++row) {
    out.push_back({pg::text(rows, row, 0), pg::text(rows, row, 1), pg::number(rows, row, 2),
                   pg::number(rows, row, 3), pg::text(rows, row, 4)});
  }
  return out;
}

void PostgresFunctionStore::leave(const std::string& node) {
  std::lock_guard lock(mutex_);
  db_.exec("cannot remove this node", "DELETE FROM nodes WHERE id = $1", {node});
}

}  // namespace faas::store
