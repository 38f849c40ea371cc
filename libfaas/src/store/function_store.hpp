// The functions registry: one row per function with its current code, requirements, settings and metadata, the
// kept versions, the schedules' fired ticks and, in a cluster, the nodes. Two implementations: SQLite in
// <data-dir>/faas.db (sqlite_function_store.hpp, the default) and PostgreSQL (postgres_function_store.hpp), which
// every node of a cluster shares.
// The database is the source of truth; the files under functions/ are a copy the engine can always rewrite.
// Thread-safe; registry operations are rare. Every method throws Error (store_unavailable when the database cannot
// be reached or written).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "faas/function_info.hpp"
#include "faas/function_settings.hpp"
#include "faas/status.hpp"

namespace faas::store {

struct FunctionSource {
  std::string code;
  std::optional<std::string> requirements;
};

// One kept version of a function.
struct VersionRow {
  FunctionVersion info;
  FunctionSource source;
};

// A server sharing the store, as its last heartbeat left it.
struct NodeRow {
  std::string id;
  std::string started_at;  // local time, as records write it
  double seen_at = 0;            // seconds since the epoch
  double seen_seconds_ago = 0;   // by the database's clock
  std::string status;      // JSON object text: what the node reported at its last heartbeat
};

class FunctionStore {
 public:
  virtual ~FunctionStore() = default;

  // Grows at every put() and remove(), from any process: compare it to notice changes.
  virtual std::uint64_t registry_version() = 0;
  // Calls `changed` (on a thread of the store's) soon after another process changed the registry, and after the
  // store reconnected (anything may have changed meanwhile). SQLite has no such signal: callers also poll.
  virtual void on_change(std::function<void()> changed) { (void)changed; }
  // Calls `released` (on the same thread) when a node gave its inbox entries up (it stopped cleanly), so that
  // another takes them at once. Only a shared store has other nodes.
  virtual void on_released(std::function<void()> released) { (void)released; }
  virtual std::vector<FunctionInfo> list() = 0;
  virtual std::optional<FunctionInfo> find(const std::string& name) = 0;
  virtual std::optional<FunctionSource> source(const std::string& name) = 0;

  virtual std::optional<FunctionSettings> settings(const std::string& name) = 0;

  // Claims a schedule's tick: true for the first caller (in any process), false after.
  virtual bool claim_tick(const std::string& name, std::size_t entry, std::int64_t minute) = 0;
  virtual void forget_ticks_before(std::int64_t minute) = 0;

  // A new revision number, for a change about to be made (an upload imports its new version under it).
  virtual std::uint64_t reserve_revision() = 0;
  // The number the next upload of `name` gets: one above every version it ever had that is still known.
  virtual std::uint64_t next_version(const std::string& name) = 0;
  // Kept versions, newest first; empty when there is no such function.
  virtual std::vector<FunctionVersion> versions(const std::string& name) = 0;
  virtual std::optional<VersionRow> version(const std::string& name, std::uint64_t version) = 0;
  // Makes `info.version` (new, or a kept one: a rollback) the function's current version at `info.revision`
  // (from reserve_revision()); keeps its created_at, and its settings unless `settings` is given. Keeps the
  // newest `keep_versions` versions (at least 1) and the current one, and forgets older ones.
  virtual FunctionInfo put(FunctionInfo info, const std::string& code, const std::optional<std::string>& requirements,
                           const FunctionSettings* settings = nullptr, std::size_t keep_versions = 10) = 0;
  // Replaces a function's settings and records `revision` (from reserve_revision()). False when there is no
  // such function.
  virtual bool save_settings(const std::string& name, const FunctionSettings& settings, std::uint64_t revision) = 0;
  // Deletes the function and its invocation records. False when there was no such function.
  virtual bool remove(const std::string& name) = 0;

  // The nodes table: each server sharing the store writes its row every second (`status`: a JSON object).
  virtual void heartbeat(const std::string& node, const std::string& started_at, const std::string& status) = 0;
  // Every node seen within `window`, by id.
  virtual std::vector<NodeRow> nodes(std::chrono::seconds window) = 0;
  // Removes the node's row (it stops).
  virtual void leave(const std::string& node) = 0;
};

}  // namespace faas::store
