// faas/engine.hpp — the one façade over libfaas: upload, invoke, list, logs, status. Its vocabulary (configuration,
// function info, status, invocation records, errors) lives in the headers included below.
//
// Thread safety: every method may be called from any thread at once.
// Blocking: upload() may run pip (bounded by pip_timeout) and imports the new code; invoke() waits for the
// function and for its record to be committed (when the engine is idle it runs both on the calling thread);
// invoke_async() never blocks.
// Durability: an invocation is reported (returned or called back) only after its record is committed to
// <data-dir>/faas.db, and upload() returns only after the new version is committed, so a crash loses neither.
// Python: with Isolation::inprocess the first Engine in a process initialises the embedded interpreter (isolated:
// no site, no environment variables) or, inside a running Python, uses that interpreter; it lives until the
// process exits. With Isolation::process the engine never starts Python itself: its faas-worker processes do.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "faas/config.hpp"
#include "faas/error.hpp"
#include "faas/follow.hpp"
#include "faas/function_info.hpp"
#include "faas/function_settings.hpp"
#include "faas/invocation.hpp"
#include "faas/stats.hpp"
#include "faas/status.hpp"

namespace faas {

class Engine {
 public:
  // Opens (or creates) the data dir and its database, reconciles it after a crash, starts the executor and the
  // log writer. Throws Error on an unusable data dir.
  explicit Engine(EngineConfig config);
  // Same as shutdown().
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Creates or atomically replaces a function. The new version is built (virtualenv when `requirements` has any)
  // and imported before it replaces the old one; on failure the old one keeps serving and Error(build_failed)
  // carries the reason (traceback or pip's output tail). An upload of the code and requirements the function
  // already has changes nothing and returns the current info (same version). Throws Error(invalid_name |
  // invalid_input).
  FunctionInfo upload(std::string_view name, std::string_view code,
                      std::optional<std::string_view> requirements = std::nullopt);
  // The same, with a JSON merge patch of its settings (see update_settings) applied with the new version, so
  // that its import already runs under them.
  FunctionInfo upload(std::string_view name, std::string_view code, std::optional<std::string_view> requirements,
                      const nlohmann::json& settings_patch);

  // Deletes a function, its files and its records. Throws Error(not_found).
  void remove(std::string_view name);

  std::vector<FunctionInfo> list() const;
  FunctionInfo info(std::string_view name) const;  // throws Error(not_found)

  // The kept versions of a function's code, newest first (EngineConfig::keep_versions). Throws Error(not_found).
  std::vector<FunctionVersion> versions(std::string_view name) const;
  // Makes a kept version the current one again, as an upload would (imported first; its virtualenv is reused
  // when it is still built): new calls run it, and the next upload gets a new number above every version.
  // Returns the function's info. Throws Error(not_found) for an unknown function or version, or as upload().
  FunctionInfo rollback(std::string_view name, std::uint64_t version);

  // A function's settings (faas/function_settings.hpp), secret values included: show settings_view() of them.
  // Throws Error(not_found).
  FunctionSettings settings(std::string_view name) const;
  // Applies a JSON merge patch to a function's settings; the next call runs under them (process isolation
  // starts fresh workers). Returns the new settings. Throws Error(not_found | invalid_name | invalid_input).
  FunctionSettings update_settings(std::string_view name, const nlohmann::json& patch);
  // The function's `public` setting, cheaply, for a frontend deciding whether a call needs credentials
  // (nullopt: unset, or no such function).
  std::optional<bool> is_public(std::string_view name) const;

  // Runs a function and returns its record (also when the function raised: see record.ok()). A request with a
  // version runs that kept version instead of the current one (its files and virtualenv are made ready at its
  // first such call). Throws Error(not_found | invalid_name | invalid_input | overloaded | shutting_down).
  InvocationResult invoke(InvokeRequest request);
  InvocationResult invoke(std::string_view name, const nlohmann::json& args);

  // Queues an invocation and returns its record's id at once. `done` runs exactly once: with the result, on an
  // engine thread (it must not block: post slow work to your own executor), or with the Error that refused the
  // call (not_found, invalid_name, invalid_input, overloaded, shutting_down), on the calling thread before
  // invoke_async returns an empty id.
  std::string invoke_async(InvokeRequest request, InvokeCallback done);

  // The inbox, for frontends that acknowledge a request before answering it (faas-mqtt acknowledges a QoS 1
  // request to the broker only once it is here). accept() commits the request (batched with the other writes)
  // and then calls `accepted` on an engine thread (it must not block) with nothing, or with the
  // Error(store_unavailable) that kept it out; it returns the invocation id it gave the request (its
  // request.invocation_id when set), so that the caller can invoke it at once with that id, beside the commit.
  // The request stays in the inbox until settle() is called with that id, once its answer was delivered. At start
  // a frontend answers what unsettled() returns: from the record when the call had run (record()), else by
  // invoking it (request.invocation_id is set).
  std::string accept(const AcceptedRequest& request, std::function<void(std::optional<Error>)> accepted);
  void settle(std::string invocation_id);
  std::vector<AcceptedRequest> unsettled(std::string_view source) const;  // oldest first; throws Error
  // What a frontend calls instead of unsettled() to serve `source` in a cluster as well: `handler` gets, at once
  // (on the calling thread), the requests left from before — this node's own, and those no live node holds — and
  // later (on an engine thread; it must not block) those of nodes whose heartbeats stopped for longer than
  // EngineConfig::node_lease, now this node's to answer. With SQLite, only the first. Throws Error.
  void take_up(const std::string& source, std::function<void(std::vector<AcceptedRequest>)> handler);

  // False while the store is unreachable: invocations are refused (store_unavailable) until it is back.
  bool store_available() const;

  // The servers sharing the store (this one included), as their last heartbeats left them; with PostgreSQL, the
  // whole cluster.
  std::vector<NodeInfo> nodes() const;

  // Asynchronous calls that survive a crash and are retried (docs/http.md#asynchronous-calls). submit_async()
  // commits the call to the store, then calls `accepted` on an engine thread with its id (or the Error that kept
  // it out: not_found, invalid_name, invalid_input, store_unavailable); a call with an idempotency key already seen
  // gets the first call's id and starts nothing. Calls are run by the engine that serves their `source`: after
  // serve_async(source, finished), it runs those left in the store from before and each new one; an attempt that
  // fails is retried after the function's retry_delay (doubled each time) until max_attempts, and a call that used
  // them up becomes a dead letter. `finished` gets each call's last record (a success, or its last failure) on an
  // engine thread (it must not block).
  using AsyncFinished = std::function<void(const AsyncCall& call, const std::string& record_json)>;
  void serve_async(const std::string& source, AsyncFinished finished);
  void submit_async(const std::string& source, InvokeRequest request, AsyncOptions options,
                    std::function<void(Outcome<std::string>)> accepted);
  // A call still waiting, or dead (by its id, the one submit_async gave).
  std::optional<AsyncCall> async_call(std::string_view id) const;
  std::vector<AsyncCall> dead_letters() const;  // oldest first
  // Gives a dead letter its attempts again (from 1, at once). Throws Error(not_found).
  void redrive(std::string_view id);
  // Forgets a dead letter. Throws Error(not_found).
  void discard_dead_letter(std::string_view id);

  // Adds records made elsewhere (the original servers' logs, say) to a function's logs, each kept exactly as it
  // is (JSON objects; "function" is set when missing) and placed among the others by its "time_start" (local
  // time, as records write it; a record without one goes last). Records are kept in one transaction; one already
  // imported is not added again. Returns how many were added. Throws Error(not_found | invalid_input |
  // store_unavailable).
  std::size_t import_records(std::string_view name, const std::vector<std::string>& records);

  // The function's records as JSON texts, oldest first: the newest `limit` (0 = all). Throws Error(not_found).
  std::vector<std::string> logs(std::string_view name, std::size_t limit = 1000) const;
  // One record by invocation id, once it is committed.
  std::optional<std::string> record(std::string_view invocation_id) const;

  // Follows the records this engine commits from now on (faas/follow.hpp), of one function or all. With
  // options.after, first those committed after that record: exactly, in commit order, when it is among the last
  // 10,000 committed here; else the newest 10,000 of those stored with a later id (ids grow with start times), which
  // may read the store. `wake` is called on an engine thread (it must not block) when the follower has something to
  // take after having nothing. Throws Error(not_found | invalid_name | invalid_input).
  std::shared_ptr<RecordFollower> follow(FollowOptions options, std::function<void()> wake = {});

  enum class InvocationState {
    unknown,    // never accepted here, or its record was dropped by the retention limit or a delete
    running,    // accepted by this engine (queued or running), its record not committed yet
    committed,  // its record can be read with record()
  };
  // Where an invocation accepted by invoke_async stands. Answers `running` until the record is committed, then
  // `committed`: never `unknown` in between.
  InvocationState invocation_state(std::string_view invocation_id) const;

  // Fires the schedules due in the minute that holds `minute` (read in local time): each matching entry of each
  // function's `schedule` setting runs once, as an invocation whose record has trigger "schedule". A tick is
  // claimed in the store first, so engines sharing a data dir fire it once between them. The engine calls it at
  // every minute itself (EngineConfig::schedules); tests and embedders may drive it with a clock of their own.
  // Returns the ids of the invocations it started.
  std::vector<std::string> run_schedules(std::chrono::system_clock::time_point minute);

  Status status() const;
  // Calls per function and minute over the last hour, with errors and duration percentiles, totals since start,
  // and the server's CPU and memory per minute (faas/stats.hpp). In memory: it starts empty with the engine.
  Stats stats() const;
  const EngineConfig& config() const noexcept;

  // Stops taking invocations and waits until those queued and running are answered (each bounded by its
  // timeout). The store stays open: settle() and reads still work. Idempotent.
  void drain();
  // drain(), then commits everything queued and closes the database. Idempotent.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Joins record JSON texts (as logs() returns them) into one JSON array text.
std::string join_json_array(const std::vector<std::string>& items);

}  // namespace faas
