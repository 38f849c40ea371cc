// The invocation log: every record goes through one writer thread that commits whatever has queued up as one
// transaction (group commit, as LevelDB's DBImpl::Write). A record's completion runs only after its transaction
// committed, so an answered invocation is never lost to a crash of the process; a record that cannot be committed
// (disk full, I/O error) completes with Error(store_unavailable) instead, so nothing claims a success that left no
// record. Appending never blocks on disk.
// The same writer keeps the inbox: requests a frontend has taken and must not lose before they are answered
// (faas-mqtt acknowledges a QoS 1 request to the broker only once it is committed here). Accepting and settling
// ride in the records' transactions, so the inbox costs no commits of its own under load.
// What a commit writes and where it reads from is the store's (record_store.hpp: SQLite or PostgreSQL).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "faas/invocation.hpp"
#include "store/record_store.hpp"

namespace faas::store {

class RecordLog {
 public:
  struct Options {
    std::size_t retention = 10000;  // records kept per function (0 = all)
    // How many records may still come: calls accepted and not yet answered (the engine's count). Lets the writer
    // wait for a fuller batch only when the records it waits for can arrive. Unset: it never waits.
    std::function<std::size_t()> outstanding;
  };
  using InboxEntry = store::InboxEntry;
  using Imported = store::Imported;
  using AcceptCallback = store::AcceptCallback;

  // Called on the writer thread for each record, committed or not, with its JSON text, before its callback.
  using CommitObserver = std::function<void(const Invocation&, const std::string& json, bool committed)>;
  // Called on the writer thread after each record's callback returned.
  using DeliveryObserver = std::function<void()>;

  RecordLog(std::unique_ptr<RecordStore> store, Options options, CommitObserver on_commit,
            DeliveryObserver on_delivered);
  ~RecordLog();  // commits what is queued, then stops

  // Queues a record; `done` receives it with its JSON text once committed, or Error(store_unavailable) when it
  // could not be. Thread-safe, never blocks on disk.
  void append(Invocation record, InvokeCallback done);
  // Commits one record on the calling thread when the writer is idle and returns it with its JSON text (or the
  // Error that kept it out of the database); returns nothing (leaving `record` untouched) when the writer is
  // busy, and the record should be appended instead. A lone synchronous caller saves two thread hand-offs.
  std::optional<Outcome<InvocationResult>> commit_inline(Invocation& record);
  // Queues an inbox entry; `done` runs on the writer thread once it is committed, or with the Error that kept it
  // out. Never blocks on disk.
  void accept(InboxEntry entry, AcceptCallback done);
  // Queues the removal of an answered inbox entry; committed with the next batch, then `done` runs (on the
  // writer thread) with nothing or the Error that kept it.
  void settle(std::string id, AcceptCallback done = {});
  // The inbox entries of `source`, oldest first; with `prefix`, of every source that starts with it.
  std::vector<InboxEntry> inbox(const std::string& source, bool prefix = false);
  std::optional<InboxEntry> inbox_entry(const std::string& id);
  // The id an idempotency key was given to, when it was kept less than `window` ago.
  std::optional<std::string> keyed(const std::string& key, std::chrono::seconds window);

  // Commits `records` in one transaction (an id already there is skipped) and returns how many were added.
  // Throws Error(store_unavailable) when they could not be.
  std::size_t import(std::vector<Imported> records);

  // Waits until everything appended before this call is committed.
  void flush();
  // Commits what is queued and stops the writer; call once, after the last append.
  void stop();

  // False while the store is known to be unreachable.
  bool available() const { return store_->available(); }
  RecordStore& store() { return *store_; }

  // Reads (thread-safe, beside the writer): newest `limit` records of a function, oldest first (0 = all).
  std::vector<std::string> read(const std::string& function, std::size_t limit);
  std::optional<std::string> find(const std::string& invocation_id);
  // The newest `limit` records whose id is above `after` (of `function`, or of all when it is empty), oldest first.
  std::vector<Imported> read_after(const std::string& function, const std::string& after, std::size_t limit);

 private:
  using Pending = Batch::Pending;
  using Accepting = Batch::Accepting;
  using Importing = Batch::Importing;

  void run();
  // Makes the records' JSON and commits the batch in one transaction; the Error when it could not.
  std::optional<Error> commit(Batch& batch);
  // Runs the callbacks of a batch after its transaction, with the Error if it failed.
  void complete(Batch& batch, const std::optional<Error>& failure);

  std::unique_ptr<RecordStore> store_;
  Options options_;
  CommitObserver on_commit_;
  DeliveryObserver on_delivered_;

  std::mutex mutex_;
  std::condition_variable wake_writer_;
  std::condition_variable committed_cv_;
  Batch queue_;
  bool writer_waiting_ = false;
  bool gathering_ = false;      // the writer waits up to gather_window for gather_target_ records
  std::size_t gather_target_ = 0;
  static constexpr std::size_t gather_min = 8;   // records expected within the window that make waiting worth it
  static constexpr std::size_t gather_max = 64;
  static constexpr std::chrono::microseconds gather_window{500};
  bool inline_active_ = false;  // a caller is committing with write_db_; the writer stays parked meanwhile
  bool stopping_ = false;
  std::uint64_t appended_ = 0;
  std::uint64_t committed_ = 0;
  std::thread writer_;

};

}  // namespace faas::store
