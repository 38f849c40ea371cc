// The feed of committed records behind Engine::follow: the record writer publishes each record it committed, and
// every follower whose function matches gets it. The newest records stay in a ring, bounded in count and bytes,
// so that a follower coming back after a reconnect resumes exactly where it left off, in commit order; one that
// was away longer resumes from the store (by id, which orders records by their start). The ring is kept only
// while someone follows, and for `watch_window` after: a server nobody watches pays one clock read per record.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "faas/follow.hpp"

namespace faas {

class RecordFeed {
 public:
  static constexpr std::size_t ring_records = 10000;
  static constexpr std::size_t ring_bytes = 16u << 20;
  static constexpr std::chrono::minutes watch_window{10};

  // On the record writer, for each record committed.
  void publish(const std::string& id, const std::string& function, const std::string& json);

  // Starts offering records to `follower`. With options().after set, first offers those committed after that
  // record when the ring still holds it, and returns true; false when it does not (the caller replays from the
  // store) or no `after` was given.
  bool subscribe(const std::shared_ptr<RecordFollower>& follower);

 private:
  // Until when records are kept: the last moment someone followed, plus watch_window (steady clock, ns).
  std::atomic<std::int64_t> watched_until_{0};
  std::mutex mutex_;
  std::deque<std::shared_ptr<const FollowedRecord>> ring_;
  std::size_t bytes_ = 0;
  std::vector<std::weak_ptr<RecordFollower>> followers_;
};

}  // namespace faas
