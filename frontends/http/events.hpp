// events.hpp — responses sent as they are produced, as Server-Sent Events (text/event-stream): the live records of
// GET /admin/events and GET /admin/logs/{name}?follow=1 (docs/http.md#following-records).
//
// The Api makes an EventSource; the server writes its header, then whatever take() gives each time wake() says
// there is more, and a heartbeat comment when it has been quiet for a while; it stops when take() says the body
// ended or the client went away.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "faas/follow.hpp"

namespace faas::http {

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Called once, before the first take(): `wake` (any thread, never blocks) tells the server to take() again.
  virtual void start(std::function<void()> wake) = 0;
  // The next bytes of the body, empty when nothing waits; sets `ended` once the body is complete.
  virtual std::string take(bool& ended) = 0;
};

// One event: an optional `event:` name and `id:`, and `data` as `data:` lines (a line break in it starts another,
// which the client joins back with a line feed, so any text arrives unchanged).
std::string sse_event(std::string_view data, std::string_view id = {}, std::string_view event = {});

// Committed records as events: each record one event whose id is the record's id (the Last-Event-ID to resume
// after). A follower that fell behind ends the stream with an event named "dropped"; the client reconnects.
class RecordEvents final : public EventSource {
 public:
  // `backlog`: events to send first (records read before following).
  explicit RecordEvents(std::string backlog);
  // For Engine::follow, before attach(): what the engine calls when records arrive.
  std::function<void()> waker();
  void attach(std::shared_ptr<RecordFollower> follower);

  void start(std::function<void()> wake) override;
  std::string take(bool& ended) override;

 private:
  struct Wake {
    std::mutex mutex;
    std::function<void()> call;
  };
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  std::string backlog_;
  std::shared_ptr<RecordFollower> follower_;
  bool ended_ = false;
};

}  // namespace faas::http
