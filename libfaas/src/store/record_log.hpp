// The invocation log: every record goes through one writer thread that commits whatever has queued up as one
// transaction (group commit, as LevelDB's DBImpl::Write). A record's completion runs only after its transaction
// committed, so an answered invocation is never lost to a crash of the process; a record that cannot be committed
// (disk full, I/O error) completes with Error(store_unavailable) instead, so nothing claims a success that left no
// record. Appending never blocks on disk.
// The same writer keeps the inbox: requests a frontend has taken and must not lose before they are answered
// (faas-mqtt acknowledges a QoS 1 request to the broker only once it is committed here). Accepting and settling
// ride in the records' transactions, so the inbox costs no commits of its own under load.
// A second thread checkpoints the WAL in the background, which keeps commits short (checkpointing inside the
// writer's commits halved its throughput).
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

#include <SQLiteCpp/SQLiteCpp.h>

#include "faas/invocation.hpp"

namespace faas::store {

class RecordLog {
 public:
  struct Options {
    std::size_t retention = 10000;  // records kept per function (0 = all)
    // How many records may still come: calls accepted and not yet answered (the engine's count). Lets the writer
    // wait for a fuller batch only when the records it waits for can arrive. Unset: it never waits.
    std::function<std::size_t()> outstanding;
  };
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
  };
  using AcceptCallback = std::function<void(std::optional<Error>)>;

  // Called on the writer thread for each record, committed or not, with its JSON text, before its callback.
  using CommitObserver = std::function<void(const Invocation&, const std::string& json, bool committed)>;
  // Called on the writer thread after each record's callback returned.
  using DeliveryObserver = std::function<void()>;

  RecordLog(const std::filesystem::path& db_file, Options options, CommitObserver on_commit,
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

  // A record made elsewhere, kept as its JSON text under the key `id` (which orders a function's records).
  struct Imported {
    std::string id;
    std::string function;
    std::string json;
  };
  // Commits `records` in one transaction (an id already there is skipped) and returns how many were added.
  // Throws Error(store_unavailable) when they could not be.
  std::size_t import(std::vector<Imported> records);

  // Waits until everything appended before this call is committed.
  void flush();
  // Commits what is queued and stops the writer; call once, after the last append.
  void stop();

  // Reads (thread-safe, beside the writer): newest `limit` records of a function, oldest first (0 = all).
  std::vector<std::string> read(const std::string& function, std::size_t limit);
  std::optional<std::string> find(const std::string& invocation_id);
  // The newest `limit` records whose id is above `after` (of `function`, or of all when it is empty), oldest first.
  std::vector<Imported> read_after(const std::string& function, const std::string& after, std::size_t limit);

 private:
  struct Pending {
    Invocation record;
    InvokeCallback done;
    std::string json;
  };

  struct Accepting {
    InboxEntry entry;
    AcceptCallback done;
  };
  // What one transaction writes.
  struct Importing {
    std::vector<Imported> records;
    std::function<void(std::optional<Error>, std::size_t added)> done;
    std::size_t added = 0;  // set by the commit
  };
  struct Batch {
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

  void run();
  void checkpoint_loop();
  // Commits the batch in one transaction (retrying a failure twice); the Error when it could not.
  std::optional<Error> commit(Batch& batch);
  // Runs the callbacks of a batch after its transaction, with the Error if it failed.
  void complete(Batch& batch, const std::optional<Error>& failure);
  void trim(const std::string& function);

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

  // Writer thread only.
  std::unique_ptr<SQLite::Database> write_db_;
  std::unique_ptr<SQLite::Statement> insert_;
  std::unique_ptr<SQLite::Statement> accept_;
  std::unique_ptr<SQLite::Statement> replace_;
  std::unique_ptr<SQLite::Statement> keep_key_;
  std::unique_ptr<SQLite::Statement> import_;
  std::unique_ptr<SQLite::Statement> settle_;
  std::unique_ptr<SQLite::Statement> begin_;   // prepared once: parsing them cost a few us per commit
  std::unique_ptr<SQLite::Statement> commit_;
  std::unique_ptr<SQLite::Statement> rollback_;
  std::unordered_map<std::string, std::size_t> since_trim_;

  std::mutex read_mutex_;
  std::unique_ptr<SQLite::Database> read_db_;

  // Checkpoints (copying the WAL into the database file) run here, not inside the writer's commits.
  std::unique_ptr<SQLite::Database> checkpoint_db_;
  std::condition_variable checkpoint_cv_;
  std::thread checkpointer_;
};

}  // namespace faas::store
