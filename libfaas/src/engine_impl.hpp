// Engine::Impl, shared by the files that implement the façade: engine.cpp (construction, admission, invocation,
// reads, status, shutdown) and upload.cpp (staging and replacing functions).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "envs/venv_cache.hpp"
#include "faas/engine.hpp"
#include "registry.hpp"
#include "runtime/executor.hpp"
#include "store/function_store.hpp"
#include "store/record_log.hpp"
#include "sysinfo/sysinfo.hpp"

namespace faas {

// Removes what interrupted uploads and deletes left under functions/ (upload.cpp).
void remove_upload_leftovers(const std::filesystem::path& functions_dir);

struct Engine::Impl {
  explicit Impl(EngineConfig cfg);

  // Counts an invocation in and makes its call, or throws the Error that refuses it.
  std::unique_ptr<runtime::Call> admit(InvokeRequest& request);
  void committed(const Invocation& record, bool stored);  // on the log writer, for each record it took
  void delivered();                          // after its caller was answered

  EngineConfig config;
  std::filesystem::path functions_dir;
  std::unique_ptr<store::FunctionStore> functions;
  std::unique_ptr<runtime::Executor> executor;
  std::unique_ptr<envs::VenvCache> venvs;
  std::unique_ptr<store::RecordLog> log;
  std::unique_ptr<FunctionRegistry> registry;
  sysinfo::Sampler sampler;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  std::atomic<bool> accepting{true};
  std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::uint64_t max_in_flight;
  std::mutex drain_mutex;
  std::condition_variable drained;

  // Ids of invocations accepted and not yet committed, for invocation_state().
  mutable std::mutex running_mutex;
  std::unordered_set<std::string> running;

  std::once_flag shutdown_once;
};

}  // namespace faas
