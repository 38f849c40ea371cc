// faas/follow.hpp — records as they commit, for whoever follows them (Engine::follow): live logs, event streams.
//
// A follower holds the records committed since it last took them, in commit order. It never slows the engine:
// one that falls more than `max_buffered` records (or `max_buffered_bytes`) behind is dropped (its records are let go and dropped() turns
// true); it then follows again from the last id it took, which replays what it missed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace faas {

struct FollowedRecord {
  std::string id;        // the record's id: the one to follow again after
  std::string function;
  std::string json;      // the record as it was answered
};

struct FollowOptions {
  std::string function;              // only this function's records; empty: every function's
  std::string after;                 // a record id taken before: first the records committed since, then new ones
  std::size_t max_buffered = 1024;   // records waiting to be taken; one more drops the follower
  std::size_t max_buffered_bytes = 8u << 20;  // and their size
};

class RecordFollower {
 public:
  using Records = std::vector<std::shared_ptr<const FollowedRecord>>;

  RecordFollower(FollowOptions options, std::function<void()> wake);

  // Moves out what is waiting, oldest first. Never blocks.
  Records take();
  // Waits up to `timeout` until there is something to take (or the follower was dropped); false on timeout.
  bool wait(std::chrono::milliseconds timeout);
  // It fell behind and its records were let go: follow again after the last id taken.
  bool dropped() const;

  // For the engine: offers a committed record (ignored when it is another function's). Never blocks on the
  // follower's reader; calls `wake` (on the offering thread) when the follower had nothing waiting. A `replay`
  // (records from before the follower came) is not bounded by max_buffered: its size is bounded by the engine.
  void offer(const std::shared_ptr<const FollowedRecord>& record, bool replay = false);
  // For the engine: puts records read from the store before those offered since, leaving out any offered already.
  void replay_before(Records earlier);
  const FollowOptions& options() const noexcept { return options_; }

 private:
  const FollowOptions options_;
  const std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  Records waiting_;
  std::size_t waiting_bytes_ = 0;
  bool dropped_ = false;
};

}  // namespace faas
