// One version of one function as the runtime sees it: where its code is, which virtualenv it runs in, and its
// settings resolved against the server's defaults.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "faas/config.hpp"
#include "util/cron.hpp"

namespace faas::runtime {

// One entry of a function's schedule, parsed.
struct ScheduledRun {
  CronSchedule cron;
  std::string args;    // JSON text
  std::string kwargs;  // JSON text; empty for none
};

// Immutable once made.
struct FunctionSpec {
  std::string name;
  std::uint64_t version = 0;
  std::filesystem::path source;          // its func.py
  std::filesystem::path staged_source;   // at upload, before the files are in place: where func.py is for now
  std::vector<std::string> site_dirs;    // its virtualenv's site-packages; empty without requirements
  // Grows at every change of the function's code or settings: executors run the highest they have seen, and
  // start fresh workers for it.
  std::uint64_t revision = 0;

  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // per call and per import
  std::size_t memory_limit_mb = 0;       // a worker's address space; 0 = no limit
  FunctionNetwork network = FunctionNetwork::host;
  unsigned min_workers = 1;
  unsigned max_workers = 4;
  std::optional<unsigned> max_concurrency;
  std::optional<bool> is_public;
  std::vector<std::string> environment;  // "NAME=value": its env variables and secrets, for its workers only
  std::vector<ScheduledRun> schedule;
  // This function's calls in flight, shared by all its revisions (counted only under a max_concurrency).
  std::shared_ptr<std::atomic<unsigned>> in_flight;

  // The sys.modules name for this revision: unique per name and revision, a valid identifier.
  std::string module_name() const;
};

// How long one call may run: the function's timeout, or the request's when that is shorter.
std::chrono::milliseconds call_timeout(const FunctionSpec& function, std::chrono::milliseconds requested);

// The error text of a call that ran past `timeout`, the same for every executor.
std::string timeout_message(std::chrono::milliseconds timeout);

}  // namespace faas::runtime
