// Invocation records and the inbox in PostgreSQL, shared by every node of a cluster.
// A batch is one transaction of at most three statements whatever its size: the records through COPY, and the
// rest (inbox, keys, imports) as one statement of data-modifying WITH clauses over arrays (unnest). Each inbox entry names the node that took it; it stays that node's for as
// long as the node's heartbeats go on (the nodes table), and another node takes it up after that (its lease).
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_map>

#include "store/postgres.hpp"
#include "store/record_store.hpp"

namespace faas::store {

class PostgresRecordStore final : public RecordStore {
 public:
  PostgresRecordStore(const std::string& uri, std::size_t retention, std::string node,
                      std::chrono::milliseconds lease);

  std::optional<Error> commit(Batch& batch) override;
  bool available() const override { return available_.load(std::memory_order_relaxed); }
  bool probe() override;
  std::vector<std::string> read(const std::string& function, std::size_t limit) override;
  std::optional<std::string> find(const std::string& invocation_id) override;
  std::vector<Imported> read_after(const std::string& function, const std::string& after, std::size_t limit) override;
  std::vector<InboxEntry> inbox(const std::string& source, bool prefix) override;
  std::optional<InboxEntry> inbox_entry(const std::string& id) override;
  std::optional<std::string> keyed(const std::string& key, std::chrono::seconds window) override;
  std::vector<InboxEntry> adopt(const std::string& source) override;
  std::vector<InboxEntry> take_orphans(const std::vector<std::string>& sources, std::size_t limit) override;
  void release_entries() override;

 private:
  // Writes the batch once (records through COPY when `copy`, else with the rest); throws Error.
  void write(Batch& batch, bool copy);
  void trim(const std::string& function);
  std::vector<InboxEntry> claim(const char* what, const std::string& condition, const std::string& limit,
                                const std::vector<pg::Param>& params);

  std::size_t retention_;
  std::string node_;
  std::string lease_;  // the lease as an SQL interval ("5000 milliseconds")
  std::atomic<bool> available_{true};

  std::mutex write_mutex_;  // the committing thread's, and probe()'s while the database is away
  pg::Connection write_;
  std::unordered_map<std::string, std::size_t> since_trim_;

  std::mutex read_mutex_;
  pg::Connection read_;
};

}  // namespace faas::store
