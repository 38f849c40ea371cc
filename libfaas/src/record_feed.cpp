#include "record_feed.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace faas {

RecordFollower::RecordFollower(FollowOptions options, std::function<void()> wake)
    : options_(std::move(options)), wake_(std::move(wake)) {}

RecordFollower::Records RecordFollower::take() {
  std::lock_guard lock(mutex_);
  waiting_bytes_ = 0;
  return std::exchange(waiting_, {});
}

bool RecordFollower::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return ready_.wait_for(lock, timeout, [&] { return !waiting_.empty() || dropped_; });
}

bool RecordFollower::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void RecordFollower::offer(const std::shared_ptr<const FollowedRecord>& record, bool replay) {
  if (!options_.function.empty() && record->function != options_.function) return;
  {
    std::lock_guard lock(mutex_);
    if (dropped_) return;
    if (!replay && (waiting_.size() >= options_.max_buffered ||
                    waiting_bytes_ + record->json.size() > options_.max_buffered_bytes)) {
      dropped_ = true;
      waiting_.clear();
      waiting_bytes_ = 0;
    } else {
      waiting_.push_back(record);
      waiting_bytes_ += record->json.size();
      if (waiting_.size() > 1) return;  // its reader was told already
    }
  }
  ready_.notify_all();
  if (wake_) wake_();
}

void RecordFollower::replay_before(Records earlier) {
  {
    std::lock_guard lock(mutex_);
    if (dropped_) return;
    std::unordered_set<std::string_view> offered;
    for (const auto& record : waiting_) offered.insert(record->id);
    std::erase_if(earlier, [&](const auto& record) { return offered.contains(record->id); });
    if (earlier.empty()) return;
    for (const auto& record : earlier) waiting_bytes_ += record->json.size();
    earlier.insert(earlier.end(), waiting_.begin(), waiting_.end());
    waiting_ = std::move(earlier);
  }
  ready_.notify_all();
  if (wake_) wake_();
}

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void RecordFeed::publish(const std::string& id, const std::string& function, const std::string& json) {
  const auto now = steady_ns();
  if (now > watched_until_.load(std::memory_order_relaxed)) return;  // nobody follows, nor did lately
  auto record = std::make_shared<const FollowedRecord>(FollowedRecord{id, function, json});
  std::lock_guard lock(mutex_);
  bytes_ += record->json.size();
  ring_.push_back(record);
  while (ring_.size() > ring_records || (bytes_ > ring_bytes && ring_.size() > 1)) {
    bytes_ -= ring_.front()->json.size();
    ring_.pop_front();
  }
  std::erase_if(followers_, [&](const std::weak_ptr<RecordFollower>& weak) {
    auto follower = weak.lock();
    if (!follower) return true;
    follower->offer(record);
    return false;
  });
  if (!followers_.empty()) {
    watched_until_.store(now + std::chrono::nanoseconds(watch_window).count(), std::memory_order_relaxed);
  }
}

bool RecordFeed::subscribe(const std::shared_ptr<RecordFollower>& follower) {
  std::lock_guard lock(mutex_);
  watched_until_.store(steady_ns() + std::chrono::nanoseconds(watch_window).count(), std::memory_order_relaxed);
  followers_.push_back(follower);
  const auto& after = follower->options().after;
  if (after.empty()) return false;
  auto seen = std::find_if(ring_.rbegin(), ring_.rend(), [&](const auto& record) { return record->id == after; });
  if (seen == ring_.rend()) return false;
  for (auto it = seen.base(); it != ring_.end(); ++it) follower->offer(*it, true);
  return true;
}

}  // namespace faas
