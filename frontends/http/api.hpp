// api.hpp — the HTTP routes (docs/http.md) over the engine, independent of the socket layer (server.hpp).
//
// The server hands each parsed request to Api::handle and writes whatever Response comes back. Invocations go
// through Engine::invoke_async, so no I/O thread waits on Python; uploads, deletes and reads of the database run
// on the `blocking` runner the server provides.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "auth.hpp"
#include "config.hpp"
#include "events.hpp"
#include "faas/engine.hpp"
#include "metrics.hpp"

namespace faas::http {

struct Request {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query, as sent
  std::string content_type;
  std::string authorization;
  std::string origin;         // the Origin header, sent by browsers
  bool credentials_verified = false;  // the same Authorization header was accepted earlier on this connection
  bool async = false;         // X-Faas-Async: true
  std::string max_attempts;   // X-Faas-Max-Attempts (an asynchronous call's attempts)
  std::string idempotency_key;  // X-Idempotency-Key
  std::string callback_url;   // X-Callback-Url
  std::string last_event_id;  // Last-Event-ID: where a reconnecting event stream resumes
  std::string traceparent;    // W3C trace context of the caller
  std::string accept;         // Accept
  std::string body;
};

struct Response {
  unsigned status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::string_view allow;               // for 405
  unsigned retry_after_seconds = 0;     // for 503
  bool ask_credentials = false;         // 401: add WWW-Authenticate
  bool credentials_accepted = false;    // the request's Authorization header passed the check
  std::string location;
  bool no_framing = false;              // Content-Security-Policy: frame-ancestors 'none' (the dashboard)
  std::shared_ptr<EventSource> events;  // set: a 200 text/event-stream whose body comes from here (events.hpp)
  std::string trace_id;                 // the invocation's trace, for the access log
};

// The JSON error body of every failure: {"status": "error", "message": ..., "code": ...}; `code` (the engine's
// error code, docs/http.md) is left out when empty.
Response error_response(unsigned status, std::string_view message, std::string_view code = {});

class Api {
 public:
  using Reply = std::function<void(Response)>;              // called exactly once, on any thread
  using Runner = std::function<void(std::function<void()>)>;  // runs a task off the I/O threads

  Api(Engine& engine, const HttpConfig& config, Metrics& metrics, Runner blocking);

  void handle(Request request, Reply reply);

  // From now on /healthz answers 503, so that load balancers stop sending work.
  void begin_shutdown() { draining_ = true; }

 private:
  // Neither throws: from here on every failure goes to `reply`.
  // `events`: the client accepts text/event-stream (a streaming function's chunks come as events).
  void invoke(InvokeRequest invoke_request, bool events, Reply reply);
  void invoke_detached(InvokeRequest invoke_request, AsyncOptions options, Reply reply);
  // The options of an X-Faas-Async call from its headers; `anonymous`: the caller gave no credentials (an open
  // function). Throws Error(invalid_input).
  AsyncOptions async_options(const Request& request, bool anonymous) const;
  void upload(Request request, Reply reply);
  void invocation_record(std::string id, Reply reply);
  // The event stream of records committed from now on (of one function, or all when empty), after `after` when
  // set, else after the newest `backlog` records. Blocks: reads the store.
  Response follow_records(std::string function, std::string after, std::size_t backlog);
  // Runs `work` on the blocking runner and replies with its response, or with the error it threw.
  void offload(Reply reply, std::function<Response()> work);

  Engine& engine_;
  const HttpConfig& config_;
  Metrics& metrics_;
  Runner blocking_;
  frontend::BasicAuth auth_;
  std::atomic<bool> draining_{false};
};

}  // namespace faas::http
