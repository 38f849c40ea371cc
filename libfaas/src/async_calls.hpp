// Asynchronous calls that survive a crash and are retried (Engine::submit_async, docs/http.md).
//
// A call is an inbox entry (store/record_log.hpp) of source "async:<frontend>" while it waits for an attempt, and
// "dead:<frontend>" once it used its attempts up; its body is the invoke body plus the attempt count, the
// options and the last error. Attempt k's record has the id "<id>" for k = 1 and "<id>.k" after, so a call that
// was running when the process died is not run twice: at its next start, an attempt whose record is already in
// the store is taken from there. One thread keeps the timetable and does all the bookkeeping; the records of
// attempts come back to it from the log writer, which it never blocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "faas/engine.hpp"
#include "faas/invocation.hpp"

namespace faas {

struct EngineState;

class AsyncCalls {
 public:
  explicit AsyncCalls(EngineState& engine);
  ~AsyncCalls();

  void serve(const std::string& source, Engine::AsyncFinished finished);
  void submit(const std::string& source, InvokeRequest request, AsyncOptions options,
              std::function<void(Outcome<std::string>)> accepted);
  std::optional<AsyncCall> find(std::string_view id) const;
  std::vector<AsyncCall> dead() const;
  void redrive(std::string_view id);
  void discard(std::string_view id);
  // Stops taking up calls; those waiting stay in the store for the next start. Idempotent.
  void stop();

  // The record id of a call's attempt.
  static std::string attempt_id(const std::string& id, unsigned attempt);

 private:
  using Clock = std::chrono::steady_clock;
  struct Finished {
    AsyncCall call;
    Outcome<InvocationResult> outcome;
  };

  void loop();
  void attempt(AsyncCall call);                                  // runner thread
  void settle_attempt(AsyncCall call, Outcome<InvocationResult> outcome);  // runner thread
  // Queues the call's entry as it now stands; `then` runs (on the log writer) once it is committed.
  void keep(const AsyncCall& call, std::function<void()> then = {});
  void schedule(AsyncCall call, Clock::duration delay);           // mutex_ held
  std::chrono::milliseconds retry_delay(const AsyncCall& call) const;

  EngineState& engine_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<Clock::time_point, std::string> timetable_;
  std::unordered_map<std::string, AsyncCall> waiting_;       // by id: calls of served sources not yet finished
  std::unordered_map<std::string, Engine::AsyncFinished> served_;
  std::unordered_map<std::string, std::string> keys_;        // idempotency keys not committed yet, to their id
  std::deque<Finished> finished_;                            // attempts' outcomes for the runner thread
  std::size_t accepting_ = 0;                                // submitted, not committed yet
  bool stopping_ = false;
  std::thread runner_;
};

}  // namespace faas
