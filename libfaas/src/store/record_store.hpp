// What the invocation log (record_log.hpp) needs from a database: commit a batch in one transaction, and read.
// Two implementations: SQLite in <data-dir>/faas.db (sqlite_record_store.hpp, the default) and PostgreSQL
// (postgres_record_store.hpp), shared by the nodes of a cluster, where each inbox entry belongs to the node that
// took it for as long as that node's heartbeats go on (its lease).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "faas/error.hpp"
#include "faas/invocation.hpp"

namespace faas::store {

// A request in the inbox. `body` is its invoke body ({"args": ..., "kwargs": ..., "request_id": ...});
// `reply` is where its answer goes, in the frontend's own terms.
struct InboxEntry {
  std::string id;  // the invocation id its record will have
  std::string source;
  std::string function;
  std::string body;
  std::string reply;
  bool replace = false;  // accept(): replaces the entry of the same id (its source too) instead of keeping it
  std::string key;       // accept(): an idempotency key, kept (in the same transaction) as naming `id`
  std::string node;      // read: the node it belongs to (a cluster's), or ""
};
using AcceptCallback = std::function<void(std::optional<Error>)>;

// A record made elsewhere, kept as its JSON text under the key `id` (which orders a function's records).
struct Imported {
  std::string id;
  std::string function;
  std::string json;
};

// What one transaction writes.
struct Batch {
  struct Pending {
    Invocation record;
    InvokeCallback done;
    std::string json;
  };
  struct Accepting {
    InboxEntry entry;
    AcceptCallback done;
  };
  struct Importing {
    std::vector<Imported> records;
    std::function<void(std::optional<Error>, std::size_t added)> done;
    std::size_t added = 0;  // set by the commit
  };

  std::vector<Importing> imports;
  std::vector<Pending> records;
  std::vector<Accepting> accepts;
  std::vector<std::pair<std::string, AcceptCallback>> settles;
  bool empty() const { return records.empty() && accepts.empty() && settles.empty() && imports.empty(); }
  void clear() {
    imports.clear();
    records.clear();
    accepts.clear();
    settles.clear();
  }
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;

  // Writes `batch` (its records' JSON made) in one transaction, retrying a failure; the Error(store_unavailable)
  // when it could not. Called by one thread at a time.
  virtual std::optional<Error> commit(Batch& batch) = 0;
  // False while the database is known to be unreachable: new calls are refused rather than run without a record.
  virtual bool available() const { return true; }
  // Tries the database again when it was unreachable (called every second meanwhile); returns available().
  virtual bool probe() { return available(); }

  // Reads (thread-safe, beside commits): newest `limit` records of a function, oldest first (0 = all).
  virtual std::vector<std::string> read(const std::string& function, std::size_t limit) = 0;
  virtual std::optional<std::string> find(const std::string& invocation_id) = 0;
  // The newest `limit` records whose id is above `after` (of `function`, or of all when it is empty), oldest first.
  virtual std::vector<Imported> read_after(const std::string& function, const std::string& after,
                                           std::size_t limit) = 0;
  // The inbox entries of `source`, oldest first; with `prefix`, of every source that starts with it.
  virtual std::vector<InboxEntry> inbox(const std::string& source, bool prefix) = 0;
  virtual std::optional<InboxEntry> inbox_entry(const std::string& id) = 0;
  // The id an idempotency key was given to, when it was kept less than `window` ago.
  virtual std::optional<std::string> keyed(const std::string& key, std::chrono::seconds window) = 0;

  // The entries of `source` this node takes up when it starts: every one with one node; in a cluster, its own
  // and those no live node holds, which become its own.
  virtual std::vector<InboxEntry> adopt(const std::string& source) { return inbox(source, false); }
  // In a cluster: up to `limit` entries of `sources` whose node's lease ran out (no heartbeat for a lease: it
  // died) or that a node gave up, now this node's.
  virtual std::vector<InboxEntry> take_orphans(const std::vector<std::string>& sources, std::size_t limit) {
    (void)sources, (void)limit;
    return {};
  }
  // In a cluster: gives this node's entries up at a clean stop, so that another node takes them at once.
  virtual void release_entries() {}
};

}  // namespace faas::store
