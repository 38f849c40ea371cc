// faas/engine.hpp — the one façade over libfaas: upload, invoke, list, logs, status.
//
// Thread safety: every method may be called from any thread at once.
// Blocking: upload() may run pip (bounded by pip_timeout) and imports the new code; invoke() waits for the
// function and for its record to be committed (when the engine is idle it runs both on the calling thread);
// invoke_async() never blocks.
// Durability: an invocation is reported (returned or called back) only after its record is committed to
// <data-dir>/faas.db, and upload() returns only after the new version is committed, so a crash loses neither.
// Python: the first Engine in a process initialises the embedded interpreter (isolated: no site, no environment
// variables) or, inside a running Python, uses that interpreter. The interpreter lives until the process exits.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "faas/error.hpp"
#include "faas/invocation.hpp"

namespace faas {

enum class Isolation { inprocess, process };
std::string_view to_string(Isolation isolation) noexcept;
Isolation parse_isolation(std::string_view text);  // throws Error(invalid_input)

// Process isolation (Isolation::process): each function runs in warm `faas-worker` processes of its own.
struct WorkerConfig {
  unsigned min_per_function = 1;   // kept running once a function has been used (until it is deleted)
  unsigned max_per_function = 4;   // running a function's calls at once
  unsigned spares = 1;             // started ahead with Python up and no function, so an upload loads at once
  std::chrono::seconds idle_timeout{60};  // a worker beyond the minimum that ran nothing this long is stopped
  std::size_t memory_limit_mb = 1024;     // address space per worker (RLIMIT_AS); 0 = no limit
  std::size_t result_limit = 16 * 1024 * 1024;  // bytes of a result's JSON; larger is error "ResultTooLarge"
  std::chrono::milliseconds kill_grace{250};  // past the timeout, a call that did not stop gets its worker killed
  bool sandbox = false;            // workers in new user and network namespaces: no network for functions
  std::filesystem::path program;   // the faas-worker executable; empty = $FAAS_WORKER_PROGRAM, next to this
                                   // program, then where the build or the install put it
};

struct EngineConfig {
  std::filesystem::path data_dir = "faas-data";
  Isolation isolation = Isolation::inprocess;
  std::filesystem::path python = "/usr/bin/python3";  // builds virtualenvs; becomes sys.executable
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // per invocation (and per import at upload)
  unsigned max_concurrency = 8;         // invocations running at once
  std::size_t max_queue = 4096;         // invocations waiting beyond those; more are refused as overloaded
  std::size_t output_limit = 64 * 1024; // bytes of stdout/stderr kept per invocation
  std::size_t log_retention = 10000;    // records kept per function; older ones are dropped (0 = keep all)
  std::chrono::seconds pip_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds registry_poll{250};  // how often uploads by other processes are picked up
  WorkerConfig workers;                 // used with Isolation::process
};

struct FunctionInfo {
  std::string name;
  std::uint64_t version = 0;    // 1 at the first upload, +1 at each re-upload
  std::string created_at;       // local time, seed format
  std::string updated_at;
  bool has_requirements = false;
  std::string code_sha256;
  std::string env_id;           // the virtualenv it runs in (requirements hash); empty without requirements
};
void to_json(nlohmann::json& out, const FunctionInfo& info);

struct SystemMemory {
  double total_mb = 0, available_mb = 0, used_mb = 0, percent = 0;
};

struct Status {
  double uptime_seconds = 0;
  double cpu_percent = 0;        // whole machine, since the previous status() (psutil.cpu_percent())
  double ram_percent = 0;        // whole machine (psutil.virtual_memory().percent)
  double process_cpu_percent = 0;  // this process, since the previous status(); 100 = one core
  double process_milicpu = 0;    // the same in milli-CPU: 1000 = one core
  double process_rss_mb = 0;
  SystemMemory system_memory;
  std::size_t loaded_functions = 0;
  std::uint64_t invocations = 0;         // completed since start
  std::uint64_t invocation_errors = 0;   // of which status "error"
  std::uint64_t in_flight = 0;           // accepted, not yet completed
  std::uint64_t queued = 0;              // of which waiting for an executor thread
  std::string isolation;
  std::string timestamp;                 // local time, seed format
};
// The seed-compatible shape: status, uptime, cpu_percent, ram_percent, loaded_functions,
// cpu_usage_absolute.process_milicpu, memory_usage_absolute.process_rss_mb, system_memory_info, timestamp, ...
void to_json(nlohmann::json& out, const Status& status);

using InvokeCallback = std::function<void(Outcome<InvocationResult>)>;

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
  // carries the reason (traceback or pip's output tail). Throws Error(invalid_name | invalid_input).
  FunctionInfo upload(std::string_view name, std::string_view code,
                      std::optional<std::string_view> requirements = std::nullopt);

  // Deletes a function, its files and its records. Throws Error(not_found).
  void remove(std::string_view name);

  std::vector<FunctionInfo> list() const;
  FunctionInfo info(std::string_view name) const;  // throws Error(not_found)

  // Runs a function and returns its record (also when the function raised: see record.ok()).
  // Throws Error(not_found | invalid_name | invalid_input | overloaded | shutting_down).
  InvocationResult invoke(InvokeRequest request);
  InvocationResult invoke(std::string_view name, const nlohmann::json& args);

  // Queues an invocation and returns its record's id at once. `done` runs exactly once: with the result, on an
  // engine thread (it must not block: post slow work to your own executor), or with the Error that refused the
  // call (not_found, invalid_name, invalid_input, overloaded, shutting_down), on the calling thread before
  // invoke_async returns an empty id.
  std::string invoke_async(InvokeRequest request, InvokeCallback done);

  // The function's records as JSON texts, oldest first: the newest `limit` (0 = all). Throws Error(not_found).
  std::vector<std::string> logs(std::string_view name, std::size_t limit = 1000) const;
  // One record by invocation id, once it is committed.
  std::optional<std::string> record(std::string_view invocation_id) const;

  Status status() const;
  const EngineConfig& config() const noexcept;

  // Stops taking invocations, lets queued and running ones finish (each bounded by its timeout), commits every
  // record and closes the database. Idempotent.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Joins record JSON texts (as logs() returns them) into one JSON array text.
std::string join_json_array(const std::vector<std::string>& items);

}  // namespace faas
