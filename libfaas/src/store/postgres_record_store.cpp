#include "store/postgres_record_store.hpp"

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

namespace faas::store {

namespace {

constexpr const char* inbox_columns = "id, function, body, encode(reply, 'hex'), source, coalesce(node, '')";

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

std::string from_hex(std::string_view hex) {
  auto value = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(value(hex[i]) << 4 | value(hex[i + 1])));
  }
  return out;
}

InboxEntry inbox_row(const pg::Result& rows, int row) {
  InboxEntry entry;
  entry.id = pg::text(rows, row, 0);
  entry.function = pg::text(rows, row, 1);
  entry.body = pg::text(rows, row, 2);
  entry.reply = from_hex(pg::text(rows, row, 3));
  entry.source = pg::text(rows, row, 4);
  entry.node = pg::text(rows, row, 5);
  return entry;
}

// The parameters of one statement, numbered as they are added.
struct Params {
  std::vector<std::string> values;
  std::string add(std::string value) {
    values.push_back(std::move(value));
    return "$" + std::to_string(values.size());
  }
};

}  // namespace

PostgresRecordStore::PostgresRecordStore(const std::string& uri, std::size_t retention, std::string node,
                                         std::chrono::milliseconds lease)
    : retention_(retention),
      node_(std::move(node)),
      lease_(std::to_string(lease.count()) + " milliseconds"),
      write_(uri),
      read_(uri) {}

bool PostgresRecordStore::probe() {
  if (available()) return true;
  std::lock_guard lock(write_mutex_);
  try {
    write_.exec("cannot reach PostgreSQL", "SELECT 1");
    available_ = true;
    spdlog::info("PostgreSQL is back: taking invocations again");
  } catch (const Error&) {
  }
  return available();
}

void PostgresRecordStore::write(Batch& batch, bool copy) {
  const char* what = "cannot record the invocation";
  // PostgreSQL's text is UTF-8 only; a function's output may not be (the caller gets what was kept).
  for (auto& pending : batch.records) pg::make_valid_utf8(pending.json);
  Params params;
  std::vector<std::string> parts;
  if (!batch.records.empty() && !copy) {
    pg::ArrayText ids, functions, records;
    for (auto& pending : batch.records) {
      ids.add(pending.record.id);
      functions.add(pending.record.function);
      records.add(pending.json);
    }
    parts.push_back("r AS (INSERT INTO invocations (id, function, record) SELECT * FROM unnest(" +
                    params.add(ids.finish()) + "::text[], " + params.add(functions.finish()) + "::text[], " +
                    params.add(records.finish()) + "::text[]) ON CONFLICT (id) DO NOTHING)");
  }
  if (!batch.accepts.empty()) {
    // One row per id (the last replacing one wins, else the first): a statement may not touch a row twice.
    std::unordered_map<std::string_view, std::size_t> last;
    std::unordered_map<std::string_view, bool> replaced;
    for (std::size_t i = 0; i < batch.accepts.size(); ++i) {
      const auto& entry = batch.accepts[i].entry;
      auto it = last.emplace(entry.id, i).first;
      if (entry.replace) {
        it->second = i;
        replaced[entry.id] = true;
      }
    }
    pg::ArrayText keep_ids, keep_sources, keep_functions, keep_bodies, keep_replies;
    pg::ArrayText new_ids, new_sources, new_functions, new_bodies, new_replies;
    pg::ArrayText keys, key_ids;
    std::unordered_map<std::string_view, std::string_view> key_owner;
    std::vector<std::size_t> kept;  // in the order they came: the inbox is read back oldest first (by seq)
    for (const auto& [id, index] : last) kept.push_back(index);
    std::sort(kept.begin(), kept.end());
    for (auto index : kept) {
      const auto& entry = batch.accepts[index].entry;
      bool replace = replaced.contains(entry.id);
      (replace ? new_ids : keep_ids).add(entry.id);
      (replace ? new_sources : keep_sources).add(entry.source);
      (replace ? new_functions : keep_functions).add(entry.function);
      (replace ? new_bodies : keep_bodies).add(entry.body);
      (replace ? new_replies : keep_replies).add(to_hex(entry.reply));
    }
    for (const auto& accepting : batch.accepts) {
      if (!accepting.entry.key.empty()) key_owner[accepting.entry.key] = accepting.entry.id;
    }
    for (const auto& [key, id] : key_owner) {
      keys.add(key);
      key_ids.add(id);
    }
    auto node = params.add(node_);
    auto rows = [&](pg::ArrayText& i, pg::ArrayText& s, pg::ArrayText& f, pg::ArrayText& b, pg::ArrayText& r) {
      return "INSERT INTO inbox (id, source, function, body, reply, node) SELECT i, s, f, b, decode(r, 'hex'), " +
             node + " FROM unnest(" + params.add(i.finish()) + "::text[], " + params.add(s.finish()) + "::text[], " +
             params.add(f.finish()) + "::text[], " + params.add(b.finish()) + "::text[], " +
             params.add(r.finish()) + "::text[]) AS t(i, s, f, b, r) ";
    };
    if (keep_ids.size() != 0) {
      parts.push_back("a AS (" + rows(keep_ids, keep_sources, keep_functions, keep_bodies, keep_replies) +
                      "ON CONFLICT (id) DO NOTHING)");
    }
    if (new_ids.size() != 0) {
      parts.push_back("u AS (" + rows(new_ids, new_sources, new_functions, new_bodies, new_replies) +
                      "ON CONFLICT (id) DO UPDATE SET source = excluded.source, function = excluded.function, "
                      "body = excluded.body, reply = excluded.reply, node = excluded.node)");
    }
    if (keys.size() != 0) {
      parts.push_back("k AS (INSERT INTO idempotency_keys (key, id, created_at) SELECT k, i, "
                      "extract(epoch FROM now())::bigint FROM unnest(" + params.add(keys.finish()) + "::text[], " +
                      params.add(key_ids.finish()) + "::text[]) AS t(k, i) "
                      "ON CONFLICT (key) DO UPDATE SET id = excluded.id, created_at = excluded.created_at)");
    }
  }
  if (!batch.settles.empty()) {
    pg::ArrayText ids;
    for (const auto& [id, done] : batch.settles) ids.add(id);
    parts.push_back("s AS (DELETE FROM inbox WHERE id = ANY(" + params.add(ids.finish()) + "::text[]))");
  }
  std::string counts;
  for (std::size_t k = 0; k < batch.imports.size(); ++k) {
    pg::ArrayText ids, functions, records;
    for (auto& record : batch.imports[k].records) {
      pg::make_valid_utf8(record.json);
      ids.add(record.id);
      functions.add(record.function);
      records.add(record.json);
    }
    auto name = "i" + std::to_string(k);
    parts.push_back(name + " AS (INSERT INTO invocations (id, function, record) SELECT * FROM unnest(" +
                    params.add(ids.finish()) + "::text[], " + params.add(functions.finish()) + "::text[], " +
                    params.add(records.finish()) + "::text[]) ON CONFLICT (id) DO NOTHING RETURNING 1)");
    counts += (counts.empty() ? "" : ", ") + std::string("(SELECT count(*) FROM ") + name + ")";
  }
  std::string sql = "WITH ";
  for (std::size_t i = 0; i < parts.size(); ++i) sql += (i ? ", " : "") + parts[i];
  sql += " SELECT " + (counts.empty() ? std::string("0") : counts);
  std::vector<const char*> values;
  values.reserve(params.values.size());
  for (const auto& value : params.values) values.push_back(value.c_str());
  auto run = [&] {
    auto result = write_.exec_values(what, sql, values);
    for (std::size_t k = 0; k < batch.imports.size(); ++k) {
      batch.imports[k].added = static_cast<std::size_t>(pg::integer(result, 0, static_cast<int>(k)));
    }
  };
  if (!copy || batch.records.empty()) return run();  // one statement: one transaction
  // Records go in with COPY, a third cheaper for the server than INSERT over arrays.
  pg::CopyText rows;
  for (const auto& pending : batch.records) {
    rows.field(pending.record.id);
    rows.field(pending.record.function);
    rows.field(pending.json);
    rows.end_row();
  }
  const std::string copy_sql = "COPY invocations (id, function, record) FROM STDIN";
  if (parts.empty()) return write_.copy_in(what, copy_sql, rows.text());  // its own transaction
  write_.exec(what, "BEGIN");
  try {
    write_.copy_in(what, copy_sql, rows.text());
    run();
    write_.exec(what, "COMMIT");
  } catch (...) {
    if (!write_.lost()) PQclear(PQexec(write_.raw(), "ROLLBACK"));
    throw;
  }
}

std::optional<Error> PostgresRecordStore::commit(Batch& batch) {
  std::lock_guard lock(write_mutex_);
  // A failure the server is to blame for is retried; if it still fails, the calls get store_unavailable: nobody
  // is told of a result that has no record.
  bool copy = true;
  // Known to be away: one try, so that callers hear at once (and an unreachable host's connect timeout is paid
  // once, not three times).
  const int attempts = available() ? 3 : 1;
  for (int attempt = 1;; ++attempt) {
    try {
      write(batch, copy);
      available_ = true;
      break;
    } catch (const Error& e) {
      if (copy && write_.last_state() == "23505") {
        // A record already there (a call run again by another node after its lease, whose first run was
        // recorded after all): COPY cannot skip it, the INSERT can.
        copy = false;
        --attempt;
        continue;
      }
      bool unreachable = e.code() == ErrorCode::store_unavailable;
      if (attempt >= attempts || !unreachable) {
        if (unreachable && available_.exchange(false)) {
          spdlog::error("PostgreSQL is unreachable ({}): invocations are refused until it is back", e.what());
        } else if (!unreachable) {
          spdlog::error("cannot commit {} invocation records and {} accepted requests ({}): their callers are told "
                        "the store is unavailable", batch.records.size(), batch.accepts.size(), e.what());
        }
        return Error(ErrorCode::store_unavailable, std::string("the store is unavailable: ") + e.what());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
    }
  }
  if (retention_ != 0) {
    for (const auto& pending : batch.records) {
      if (++since_trim_[pending.record.function] >= retention_ / 10 + 1) trim(pending.record.function);
    }
  }
  return std::nullopt;
}

void PostgresRecordStore::trim(const std::string& function) {
  since_trim_[function] = 0;
  try {
    write_.exec("cannot drop old invocation records",
                "DELETE FROM invocations WHERE function = $1 AND id <= (SELECT id FROM invocations "
                "WHERE function = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                {function, std::to_string(retention_)});
  } catch (const Error& e) {
    spdlog::warn("{}", e.what());  // tried again after the next records
  }
}

std::vector<std::string> PostgresRecordStore::read(const std::string& function, std::size_t limit) {
  std::lock_guard lock(read_mutex_);
  auto rows = read_.exec("cannot read invocation records",
                         "SELECT record FROM (SELECT id, record FROM invocations WHERE function = $1 "
                         "ORDER BY id DESC LIMIT $2) t ORDER BY id",
                         {function, limit == 0 ? pg::Param() : pg::Param(std::to_string(limit))});
  std::vector<std::string> out;
  for (int row = 0; row < PQntuples(rows.get()); ++row) out.push_back(pg::text(rows, row, 0));
  return out;
}

std::optional<std::string> PostgresRecordStore::find(const std::string& invocation_id) {
  std::lock_guard lock(read_mutex_);
  auto rows = read_.exec("cannot read an invocation record", "SELECT record FROM invocations WHERE id = $1",
                         {invocation_id});
  if (PQntuples(rows.get()) == 0) return std::nullopt;
  return pg::text(rows, 0, 0);
}

std::vector<Imported> PostgresRecordStore::read_after(const std::string& function, const std::string& after,
                                                      std::size_t limit) {
  std::lock_guard lock(read_mutex_);
  auto rows = read_.exec("cannot read invocation records",
                         "SELECT * FROM (SELECT id, function, record FROM invocations WHERE id > $1 "
                         "AND ($2 = '' OR function = $2) ORDER BY id DESC LIMIT $3) t ORDER BY id",
                         {after, function, std::to_string(limit)});
  std::vector<Imported> out;
  for (int row = 0; row < PQntuples(rows.get()); ++row) {
    out.push_back({pg::text(rows, row, 0), pg::text(rows, row, 1), pg::text(rows, row, 2)});
  }
  return out;
}

std::vector<InboxEntry> PostgresRecordStore::inbox(const std::string& source, bool prefix) {
  std::lock_guard lock(read_mutex_);
  auto rows = read_.exec("cannot read the inbox",
                         std::string("SELECT ") + inbox_columns + " FROM inbox WHERE " +
                             (prefix ? "starts_with(source, $1)" : "source = $1") + " ORDER BY seq",
                         {source});
  std::vector<InboxEntry> out;
  for (int row = 0; row < PQntuples(rows.get()); ++row) out.push_back(inbox_row(rows, row));
  return out;
}

std::optional<InboxEntry> PostgresRecordStore::inbox_entry(const std::string& id) {
  std::lock_guard lock(read_mutex_);
  auto rows = read_.exec("cannot read the inbox", std::string("SELECT ") + inbox_columns + " FROM inbox WHERE id = $1",
                         {id});
  if (PQntuples(rows.get()) == 0) return std::nullopt;
  return inbox_row(rows, 0);
}

std::optional<std::string> PostgresRecordStore::keyed(const std::string& key, std::chrono::seconds window) {
  std::lock_guard lock(read_mutex_);
  auto rows = read_.exec("cannot read the idempotency keys",
                         "SELECT id FROM idempotency_keys WHERE key = $1 AND "
                         "created_at > extract(epoch FROM now())::bigint - $2",
                         {key, std::to_string(window.count())});
  if (PQntuples(rows.get()) == 0) return std::nullopt;
  return pg::text(rows, 0, 0);
}

std::vector<InboxEntry> PostgresRecordStore::claim(const char* what, const std::string& condition,
                                                   const std::string& limit, const std::vector<pg::Param>& params) {
  // Entries locked by another node's claim are skipped, not waited for: each goes to one node.
  std::lock_guard lock(read_mutex_);
  auto rows = read_.exec(what,
                         "UPDATE inbox SET node = $1 WHERE seq IN (SELECT seq FROM inbox WHERE " + condition +
                             " ORDER BY seq " + limit + " FOR UPDATE SKIP LOCKED) RETURNING " + inbox_columns +
                             ", seq",
                         params);
  std::vector<std::pair<std::int64_t, InboxEntry>> claimed;
  for (int row = 0; row < PQntuples(rows.get()); ++row) claimed.emplace_back(pg::integer(rows, row, 6), inbox_row(rows, row));
  std::sort(claimed.begin(), claimed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<InboxEntry> out;
  for (auto& [seq, entry] : claimed) out.push_back(std::move(entry));
  return out;
}

// An entry is an orphan when no node holds it, or its node's last heartbeat is older than the lease.
static const std::string orphaned =
    "(node IS NULL OR NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.id = inbox.node AND "
    "nodes.seen_at > now() - $2::interval))";

std::vector<InboxEntry> PostgresRecordStore::adopt(const std::string& source) {
  return claim("cannot take up the inbox", "source = $3 AND (node = $1 OR " + orphaned + ")", "",
               {node_, lease_, source});
}

std::vector<InboxEntry> PostgresRecordStore::take_orphans(const std::vector<std::string>& sources,
                                                          std::size_t limit) {
  pg::ArrayText names;
  for (const auto& source : sources) names.add(source);
  return claim("cannot take up another node's inbox entries",
               "source = ANY($3::text[]) AND node IS DISTINCT FROM $1 AND " + orphaned,
               "LIMIT " + std::to_string(limit), {node_, lease_, names.finish()});
}

void PostgresRecordStore::release_entries() {
  std::lock_guard lock(read_mutex_);
  // One statement: the entries and the wake-up of the other nodes commit together.
  read_.exec("cannot give up this node's inbox entries",
             "WITH given AS (UPDATE inbox SET node = NULL WHERE node = $1 RETURNING 1) "
             "SELECT pg_notify('faas_inbox', '') WHERE EXISTS (SELECT 1 FROM given)",
             {node_});
}

}  // namespace faas::store
