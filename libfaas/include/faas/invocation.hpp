// faas/invocation.hpp — an invocation request and the record every invocation produces (docs/records.md).
//
// Arguments and results travel as JSON text, never as a parsed tree: that keeps integers of any size exact
// (nlohmann::json cannot hold integers beyond 64 bits) and lets the record be written once and sent as is.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "faas/error.hpp"

namespace faas {

// Receives each chunk a streaming function yields (its JSON text), as it yields it: on an engine thread, and it
// must not block.
using ChunkSink = std::function<void(std::string_view chunk)>;

struct InvokeRequest {
  std::string function;
  std::string args = "[]";   // JSON text of an array, passed positionally: main(*args)
  std::string kwargs;        // JSON text of an object passed as keywords; empty for none
  std::string request_id;    // empty: the engine generates a uuid4
  std::string invocation_id; // the record's id; empty: the engine makes one (set for requests from the inbox)
  std::uint64_t version = 0; // 0: the function's current version; else that one, among those kept
  std::string trigger;       // what made the call when not a client ("schedule"); empty otherwise
  unsigned attempt = 0;      // an asynchronous call's attempt (1, 2, ...); 0 for a call made once
  std::string traceparent;   // a W3C traceparent the call continues; empty or invalid: it starts a trace
  std::chrono::milliseconds timeout{0};  // when shorter than the function's timeout, this call's (a caller's
                                         // deadline); 0: the function's
  ChunkSink on_chunk;        // a generator's chunks as they come (docs/functions.md#streaming); unset: none
};

// A request a frontend has acknowledged and must answer even across a crash (Engine::accept).
struct AcceptedRequest {
  std::string source;        // the frontend that took it, say "mqtt": each reads back its own at start
  InvokeRequest request;     // request.invocation_id is set by accept() when empty
  std::string reply;         // where the answer goes, in the frontend's own terms (bytes kept as they are)
};

// How an asynchronous call is run (Engine::submit_async).
struct AsyncOptions {
  unsigned max_attempts = 0;    // 1 to 10; 0: the function's max_attempts setting
  std::string idempotency_key;  // a second call with the same key within a day starts nothing: it gets the first's id
  std::string reply;            // where the final record goes, in the frontend's own terms (a callback URL, a topic)
};

// An asynchronous call waiting for its next attempt, or among the dead letters (it used up its attempts).
struct AsyncCall {
  std::string id;               // its first attempt's record id; later attempts' records are "<id>.2", "<id>.3", ...
  std::string source;           // the frontend that took it ("http", "mqtt", ...)
  InvokeRequest request;
  unsigned attempt = 1;         // the next attempt (waiting), or the last one made (dead)
  unsigned max_attempts = 1;
  AsyncOptions options;
  std::string error;            // the last attempt's error, when there was one
  std::string updated_at;       // when it last changed, local time as in records
  bool dead = false;
};

// Parses a request body `{"args": [...], "kwargs": {...}?, "request_id": "..."?, "version": N?}` (the HTTP and
// MQTT shape) into
// `request`, keeping args and kwargs as exact JSON text. Unknown keys are ignored. Throws Error(invalid_input)
// saying what is wrong. An empty body means no arguments.
void parse_invoke_body(std::string_view body, InvokeRequest& request);

// The inverse: the body that parse_invoke_body reads back into `request` (args, kwargs, request_id, version).
std::string invoke_body(const InvokeRequest& request);

// Serialises a JSON value as compact text (for callers that hold arguments as nlohmann::json).
std::string to_json_text(const nlohmann::json& value);

// A random uuid4, the request_id given to requests that carry none.
std::string make_request_id();

enum class InvocationStatus { success, error };

struct Invocation {
  using Clock = std::chrono::system_clock;

  std::string id;               // uuid4
  std::string function;
  std::uint64_t version = 0;    // of the function's code that ran (0: none, a call refused before it ran)
  std::string trigger;          // "schedule" for a call the engine made by itself; empty for a client's
  unsigned attempt = 0;         // an asynchronous call's attempt (1, 2, ...); 0 (left out) for a call made once
  std::string node;             // in a cluster, the node that ran it; empty (left out) otherwise
  std::string request_id;
  std::string trace_id;         // W3C trace context: the trace this call belongs to (32 hex digits),
  std::string span_id;          // this call's own span (16 hex digits),
  std::string parent_span_id;   // and the caller's span, when the request carried a traceparent
  std::string trace_flags = "01";  // the caller's flags, passed on (not in the record)
  std::string args = "[]";      // JSON text
  std::string kwargs;           // JSON text; empty when the call had none
  InvocationStatus status = InvocationStatus::success;
  std::string result;           // JSON text; set on success (a streaming function's: the array of its chunks)
  std::uint64_t chunks = 0;     // how many chunks a streaming function yielded (0: it returned a value)
  bool chunks_truncated = false;  // `result` keeps only the first chunks, within the output limit
  std::string error;            // set on error: str(exc) or the engine's message
  std::string error_type;       // set on error: the exception's class name, "Timeout", "WorkerCrashed", ...
  std::string traceback;        // set when a Python exception was raised
  std::string output;           // what the function printed, capped
  Clock::time_point time_start;
  Clock::time_point time_end;
  double duration_ms = 0;       // measured on a steady clock around the call itself

  bool ok() const noexcept { return status == InvocationStatus::success; }
  // "00-<trace_id>-<span_id>-<flags>": the traceparent a call this one makes should carry.
  std::string traceparent() const;
  // Marks the invocation failed: status error, no result.
  void fail(std::string type, std::string message);
  // The record as compact JSON text, in the contract's field names and time format.
  std::string to_json() const;
};

// Local time as the original servers wrote it: "YYYY-MM-DD HH:MM:SS.ffffff".
std::string format_local_time(Invocation::Clock::time_point t);

// A completed invocation: the record and its JSON text, written once by the engine.
struct InvocationResult {
  Invocation record;
  std::string json;
};

// What an asynchronous invocation's caller receives: the result, or the Error that refused the call.
using InvokeCallback = std::function<void(Outcome<InvocationResult>)>;

}  // namespace faas
