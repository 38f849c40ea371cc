// What an Engine holds, shared by the files that implement the façade: engine.cpp (construction, admission,
// invocation, reads, status, shutdown) and upload.cpp (staging and replacing functions). It needs none of the
// façade's own header: Engine::Impl is this state and nothing more.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "async_calls.hpp"
#include "call_stats.hpp"
#include "cluster.hpp"
#include "envs/venv_cache.hpp"
#include "faas/config.hpp"
#include "faas/function_info.hpp"
#include "faas/function_settings.hpp"
#include "faas/invocation.hpp"
#include "record_feed.hpp"
#include "registry.hpp"
#include "runtime/executor.hpp"
#include "store/function_store.hpp"
#include "store/open_store.hpp"
#include "store/record_log.hpp"
#include "sysinfo/sysinfo.hpp"

namespace faas {

// Removes what interrupted uploads and deletes left under functions/ (upload.cpp).
void remove_upload_leftovers(const std::filesystem::path& functions_dir);

struct EngineState {
  explicit EngineState(EngineConfig cfg);

  // Counts an invocation in and makes its call, or throws the Error that refuses it.
  std::unique_ptr<runtime::Call> admit(InvokeRequest& request);
  // admit() and submit: Engine::invoke_async.
  std::string start(InvokeRequest request, InvokeCallback done);
  void committed(const Invocation& record, const std::string& json, bool stored);  // on the log writer, per record
  void delivered();                          // after its caller was answered
  // In a cluster, whether a call of an unknown function may read the registry again now (miss_read_due).
  bool miss_read_due();

  EngineConfig config;
  std::filesystem::path functions_dir;
  bool clustered = false;  // the store is PostgreSQL, shared with other nodes
  std::unique_ptr<store::FunctionStore> functions;
  std::unique_ptr<runtime::Executor> executor;
  std::unique_ptr<envs::VenvCache> venvs;
  RecordFeed feed;        // before the log, whose writer publishes to it
  CallStats call_stats;   // and counts in it
  std::unique_ptr<store::RecordLog> log;
  std::unique_ptr<FunctionRegistry> registry;
  sysinfo::Sampler sampler;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  std::atomic<bool> accepting{true};
  std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> scheduled{0};  // calls fired by schedules (schedules.cpp)
  std::atomic<std::chrono::steady_clock::rep> last_miss_read{0};
  std::uint64_t max_in_flight;
  std::mutex drain_mutex;
  std::condition_variable drained;

  // Ids of invocations accepted and not yet committed, for invocation_state().
  mutable std::mutex running_mutex;
  std::unordered_set<std::string> running;

  // Fires schedules at each minute (schedules.cpp); stopped first at shutdown.
  std::thread scheduler;
  std::mutex scheduler_mutex;
  std::condition_variable scheduler_cv;
  bool scheduler_stop = false;

  std::unique_ptr<AsyncCalls> async;
  std::unique_ptr<Cluster> cluster;   // last made, first destroyed

  std::once_flag drain_once;
  std::once_flag shutdown_once;
};

// Engine::run_schedules, and the scheduler thread's loop that calls it at each minute (schedules.cpp).
std::vector<std::string> fire_schedules(EngineState& engine, std::chrono::system_clock::time_point minute);
void schedule_loop(EngineState& engine);

// Engine::upload, Engine::update_settings and Engine::remove (upload.cpp).
// `settings_patch`: null, or a merge patch of the function's settings to commit with the new version.
// `rollback_to`: install that kept version (whose code and requirements these are) instead of a new one.
FunctionInfo upload_function(EngineState& engine, std::string_view name, std::string_view code,
                             std::optional<std::string_view> requirements, const nlohmann::json* settings_patch,
                             std::optional<std::uint64_t> rollback_to = std::nullopt);
FunctionSettings update_settings(EngineState& engine, std::string_view name, const nlohmann::json& patch);
void remove_function(EngineState& engine, std::string_view name);

}  // namespace faas
