// The executor seam: where and how a function's Python code runs. The engine sees only this interface; the
// in-process executor (this process's interpreter) and a process-isolated one plug in behind make_executor().
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "faas/config.hpp"
#include "faas/invocation.hpp"
#include "runtime/function_spec.hpp"

namespace faas::runtime {

// A place among a function's calls in flight (FunctionSpec::in_flight), given back when the call is destroyed.
class ConcurrencyToken {
 public:
  ConcurrencyToken() = default;
  explicit ConcurrencyToken(std::shared_ptr<std::atomic<unsigned>> counter) : counter_(std::move(counter)) {}
  ConcurrencyToken(ConcurrencyToken&&) noexcept = default;
  ConcurrencyToken& operator=(ConcurrencyToken&& other) noexcept {
    release();
    counter_ = std::move(other.counter_);
    return *this;
  }
  ~ConcurrencyToken() { release(); }

 private:
  void release() {
    if (counter_) counter_->fetch_sub(1, std::memory_order_relaxed);
    counter_.reset();
  }
  std::shared_ptr<std::atomic<unsigned>> counter_;
};

// One invocation on its way through the engine. The executor fills `record`.
struct Call {
  std::shared_ptr<const FunctionSpec> function;
  InvokeRequest request;                 // request_id already set
  Invocation record;                     // id already set by the engine
  InvokeCallback done;
  ConcurrencyToken concurrency;          // held until the call is done with
};

// Moves the request's fields (function name, request_id, args, kwargs) into the record, with the version the
// call was admitted for. Executors call it before running a call, or once they give up on it, and then set the
// version that actually ran when it differs (a newer one uploaded while the call waited).
void take_request(Call& call);

// Where the executor hands each finished call (the engine's record log).
using CallSink = std::function<void(std::unique_ptr<Call>)>;

struct ExecutorOptions {
  unsigned threads = 8;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  std::size_t output_limit = 64 * 1024;
  std::filesystem::path python = "/usr/bin/python3";
  WorkerConfig workers;   // process isolation only
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Queues a call; never blocks. The finished call, record filled, goes to the sink (on an executor thread).
  virtual void submit(std::unique_ptr<Call> call) = 0;
  // Runs the call on the calling thread, filling call.record, when the executor is idle; returns false (having
  // done nothing) when it is busy, and the call should be submitted. For a lone synchronous caller this saves the
  // thread hand-offs that otherwise cost more than the call itself.
  virtual bool run_inline(Call& call) = 0;
  // Imports one version afresh and checks it has a callable main; once it succeeds, invocations run this version.
  // Until then (and if it fails) the version loaded before keeps serving. Blocks until done.
  // Throws Error(build_failed) with the traceback.
  virtual void load(const std::shared_ptr<const FunctionSpec>& function) = 0;
  // Forgets every loaded revision of `name` except `keep_revision` (0 forgets all).
  virtual void retire(const std::string& name, std::uint64_t keep_revision) = 0;
  // Functions with at least one version loaded.
  virtual std::size_t loaded_count() const = 0;
  // Calls queued but not yet started.
  virtual std::size_t queued() const = 0;
  // Worker processes alive, and of those the ones running calls or starting (none in-process).
  struct WorkerCount {
    std::size_t total = 0, busy = 0;
  };
  virtual WorkerCount workers() const { return {}; }
  // Finishes what is queued and running, then stops. Idempotent.
  virtual void stop() = 0;
};

std::unique_ptr<Executor> make_executor(Isolation isolation, const ExecutorOptions& options, CallSink sink);

}  // namespace faas::runtime
