#include "store/record_log.hpp"

#include <future>
#include <spdlog/spdlog.h>

#include "faas/error.hpp"

namespace faas::store {

RecordLog::RecordLog(std::unique_ptr<RecordStore> store, Options options, CommitObserver on_commit,
                     DeliveryObserver on_delivered)
    : store_(std::move(store)),
      options_(options),
      on_commit_(std::move(on_commit)),
      on_delivered_(std::move(on_delivered)) {
  writer_ = std::thread([this] { run(); });
}

RecordLog::~RecordLog() { stop(); }

void RecordLog::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_writer_.notify_one();
  if (writer_.joinable()) writer_.join();
}

void RecordLog::append(Invocation record, InvokeCallback done) {
  std::lock_guard lock(mutex_);
  queue_.records.push_back(Pending{std::move(record), std::move(done), {}});
  ++appended_;
  // A busy writer picks it up with its next batch; a gathering one only needs waking once the batch is full.
  if (writer_waiting_ || (gathering_ && queue_.records.size() == gather_target_)) wake_writer_.notify_one();
}

void RecordLog::accept(InboxEntry entry, AcceptCallback done) {
  std::lock_guard lock(mutex_);
  queue_.accepts.push_back(Accepting{std::move(entry), std::move(done)});
  if (writer_waiting_) wake_writer_.notify_one();
}

void RecordLog::settle(std::string id, AcceptCallback done) {
  std::lock_guard lock(mutex_);
  queue_.settles.emplace_back(std::move(id), std::move(done));
  if (writer_waiting_) wake_writer_.notify_one();
}

std::size_t RecordLog::import(std::vector<Imported> records) {
  std::promise<Outcome<std::size_t>> committed;
  {
    std::lock_guard lock(mutex_);
    queue_.imports.push_back(Importing{std::move(records), [&committed](std::optional<Error> failure, std::size_t added) {
                                         if (failure) return committed.set_value(*failure);
                                         committed.set_value(added);
                                       }});
    if (writer_waiting_) wake_writer_.notify_one();
  }
  auto outcome = committed.get_future().get();
  if (!outcome.ok()) throw outcome.error();
  return outcome.value();
}

std::vector<RecordLog::InboxEntry> RecordLog::inbox(const std::string& source, bool prefix) {
  return store_->inbox(source, prefix);
}

std::optional<RecordLog::InboxEntry> RecordLog::inbox_entry(const std::string& id) { return store_->inbox_entry(id); }

std::optional<std::string> RecordLog::keyed(const std::string& key, std::chrono::seconds window) {
  return store_->keyed(key, window);
}

std::vector<std::string> RecordLog::read(const std::string& function, std::size_t limit) {
  return store_->read(function, limit);
}

std::optional<std::string> RecordLog::find(const std::string& invocation_id) { return store_->find(invocation_id); }

std::vector<RecordLog::Imported> RecordLog::read_after(const std::string& function, const std::string& after,
                                                      std::size_t limit) {
  return store_->read_after(function, after, limit);
}

std::optional<Outcome<InvocationResult>> RecordLog::commit_inline(Invocation& record) {
  {
    std::lock_guard lock(mutex_);
    if (!writer_waiting_ || !queue_.empty() || inline_active_ || stopping_) return std::nullopt;
    inline_active_ = true;
    ++appended_;
  }
  Batch batch;
  batch.records.push_back(Pending{std::move(record), {}, {}});
  auto failure = commit(batch);  // with the writer's connection: the writer is parked until inline_active_ clears
  auto& committed = batch.records.front();
  on_commit_(committed.record, committed.json, !failure);
  std::optional<Outcome<InvocationResult>> result;
  if (failure) {
    result.emplace(*failure);
  } else {
    result.emplace(InvocationResult{std::move(committed.record), std::move(committed.json)});
  }
  std::lock_guard lock(mutex_);
  inline_active_ = false;
  ++committed_;
  committed_cv_.notify_all();
  if (!queue_.empty()) wake_writer_.notify_one();
  return result;
}

void RecordLog::flush() {
  std::unique_lock lock(mutex_);
  auto target = appended_;
  committed_cv_.wait(lock, [&] { return committed_ >= target; });
}

void RecordLog::run() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_commit;
  double records_per_us = 0;  // arrival rate measured over the last interval between commits
  Batch batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    writer_waiting_ = true;
    wake_writer_.wait(lock, [&] { return (!queue_.empty() || stopping_) && !inline_active_; });
    writer_waiting_ = false;
    if (queue_.empty()) break;  // stopping, and everything is committed
    // Records arrive fast enough that a short wait fills a batch: wait for them (up to gather_window), so that a
    // commit's fixed cost and the wake-ups around it spread over many records (worth ~10% of faas-http's
    // throughput). Never wait for more records than calls are outstanding: a few callers waiting for this very
    // commit must not wait in vain. A slow stream, sequential callers and an idle server are committed at once.
    auto expected = static_cast<std::size_t>(records_per_us * static_cast<double>(gather_window.count()));
    if (expected >= gather_min && options_.outstanding && queue_.records.size() < gather_max && !stopping_) {
      gather_target_ = std::min({expected, gather_max, options_.outstanding()});
      gathering_ = true;
      wake_writer_.wait_for(lock, gather_window,
                            [&] { return queue_.records.size() >= gather_target_ || stopping_; });
      gathering_ = false;
      if (inline_active_) continue;
    }
    std::swap(batch, queue_);
    lock.unlock();

    auto failure = commit(batch);
    auto now = Clock::now();
    auto interval = std::chrono::duration<double, std::micro>(now - last_commit).count();
    records_per_us = static_cast<double>(batch.records.size()) / std::max(interval, 1.0);
    last_commit = now;
    complete(batch, failure);
    auto count = batch.records.size();
    batch.clear();

    lock.lock();
    committed_ += count;
    committed_cv_.notify_all();
  }
}

void RecordLog::complete(Batch& batch, const std::optional<Error>& failure) {
  // Accepted requests first: their acknowledgements are what the frontend waits for.
  for (auto& accepting : batch.accepts) accepting.done(failure);
  for (auto& importing : batch.imports) importing.done(failure, importing.added);
  for (auto& [id, done] : batch.settles) {
    if (done) done(failure);
  }
  for (auto& pending : batch.records) {
    on_commit_(pending.record, pending.json, !failure);
    auto done = std::move(pending.done);
    if (done && failure) {
      done(*failure);
    } else if (done) {
      done(InvocationResult{std::move(pending.record), std::move(pending.json)});
    }
    on_delivered_();
  }
}

std::optional<Error> RecordLog::commit(Batch& batch) {
  for (auto& pending : batch.records) pending.json = pending.record.to_json();
  return store_->commit(batch);
}

}  // namespace faas::store
