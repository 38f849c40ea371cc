// The functions registry in PostgreSQL, shared by every node of a cluster. A change is announced with
// NOTIFY faas_registry in its own transaction; each node LISTENs on a connection of its own and re-reads the
// registry when told, and after that connection came back from a loss (it may have missed anything meanwhile).
// The same connection hears faas_inbox, sent by a node that gave its inbox entries up.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "store/function_store.hpp"
#include "store/postgres.hpp"

namespace faas::store {

// Creates the tables every store needs (once, whichever node comes first). Throws Error.
void create_postgres_schema(pg::Connection& db);

class PostgresFunctionStore final : public FunctionStore {
 public:
  explicit PostgresFunctionStore(const std::string& uri);
  ~PostgresFunctionStore() override;

  std::uint64_t registry_version() override;
  void on_change(std::function<void()> changed) override;
  void on_released(std::function<void()> released) override;
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
  // Runs `body` inside BEGIN ... COMMIT on db_ (mutex_ held), rolling back when it throws.
  template <class Body>
  auto transaction(const char* what, Body&& body);
  void listen_loop();

  std::string uri_;
  std::mutex mutex_;
  pg::Connection db_;

  std::mutex changed_mutex_;
  std::function<void()> changed_;
  std::function<void()> released_;
  std::atomic<bool> stopping_{false};
  std::thread listener_;
};

}  // namespace faas::store
