// events.hpp — responses sent as they are produced, as Server-Sent Events (text/event-stream): the live records of
// GET /admin/events and GET /admin/logs/{name}?follow=1 (docs/http.md#following-records).
//
// The Api makes an EventSource; the server writes its header, then whatever take() gives each time wake() says
// there is more, and a heartbeat comment when it has been quiet for a while; it stops when take() says the body
// ended or the client went away.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "faas/follow.hpp"

namespace faas::http {

struct Response;  // api.hpp

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Called once, before the first take(): `wake` (any thread, never blocks) tells the server to take() again.
  virtual void start(std::function<void()> wake) = 0;
  // The next bytes of the body, empty when nothing waits; sets `ended` once the body is complete.
  virtual std::string take(bool& ended) = 0;
  // What the server writes after a quiet while (empty: nothing).
  virtual std::string_view heartbeat() const { return ":\n\n"; }
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

// A streaming function's answer (docs/http.md#streamed-results): its chunks as they come, then its record. As
// Server-Sent Events (`event: chunk` each, then `event: record`) when the client asked for them, from the start;
// otherwise as NDJSON (`{"chunk": n, "data": ...}` lines, then the record's), from the first chunk on, so that a
// function that yields nothing answers as any other: one JSON record.
class CallStream final : public EventSource, public std::enable_shared_from_this<CallStream> {
 public:
  // `answer` is called once: with the stream's response (at once for events, at the first chunk for NDJSON), or
  // with the whole answer when no chunk came.
  CallStream(bool events, std::function<void(Response)> answer);
  void begin();  // events: answer with the stream now, unless answered already
  void chunk(std::string_view json);
  // The call's end: the response that answers it when nothing was streamed (its record, or the error); else
  // its body ends the stream.
  void finish(Response response);

  void start(std::function<void()> wake) override;
  std::string take(bool& ended) override;
  std::string_view heartbeat() const override { return events_ ? ":\n\n" : ""; }

 private:
  const bool events_;
  std::mutex mutex_;
  std::function<void(Response)> answer_;  // until called
  std::function<void()> wake_;
  std::string pending_;
  std::uint64_t chunks_ = 0;
  bool ended_ = false;
};

}  // namespace faas::http
