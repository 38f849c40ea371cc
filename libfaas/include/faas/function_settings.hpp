// faas/function_settings.hpp — what an admin may set per function, beside its code: limits, workers, network,
// environment variables and secrets, and whether anyone may invoke it. An unset value follows the server's
// default (its command line), so a changed default reaches every function that did not choose otherwise.
//
// Settings are not part of a version of the code: changing them takes effect at the next call without an upload
// (process isolation starts fresh workers for it). Secrets are write-only: their values reach the function's
// workers as environment variables and nothing else (not records, logs, lists or the settings' own JSON form).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "faas/config.hpp"

namespace faas {

// A call the engine makes by itself at the minutes a cron expression names (docs/functions.md#schedules).
struct ScheduledCall {
  std::string cron;          // "*/5 * * * *", "@daily", ... (util/cron.hpp)
  std::string args = "[]";   // JSON text of an array
  std::string kwargs;        // JSON text of an object; empty for none

  bool operator==(const ScheduledCall&) const = default;
};

// What an unset max_attempts and retry_delay mean (as Lambda: an asynchronous call is retried twice).
constexpr unsigned default_max_attempts = 3;
constexpr std::chrono::milliseconds default_retry_delay{1000};

struct FunctionSettings {
  std::optional<std::chrono::milliseconds> timeout;  // per call and per import
  std::optional<std::size_t> memory_mb;              // a worker's address space; 0 = no limit
  std::optional<unsigned> min_workers;
  std::optional<unsigned> max_workers;
  std::optional<unsigned> max_concurrency;           // this function's calls in flight; more are refused
  std::optional<FunctionNetwork> network;            // sandboxed workers only
  std::optional<bool> is_public;                     // invocable without credentials; unset: the server's choice
  std::optional<unsigned> max_attempts;              // an asynchronous call's attempts before it is a dead letter
  std::optional<std::chrono::milliseconds> retry_delay;  // before its second attempt; doubled for each next one
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> secrets;
  std::vector<ScheduledCall> schedule;

  bool operator==(const FunctionSettings&) const = default;
};

// Applies a JSON merge patch (RFC 7396) of the settings' JSON form: a key sets its value, null returns it to the
// server's default; in "env" and "secrets" each variable is set alone, and null removes it. All or nothing:
// throws Error(invalid_input) naming the first bad key or value, leaving `settings` as it was.
void apply_settings_patch(FunctionSettings& settings, const nlohmann::json& patch);

// The JSON form an admin reads: each setting's effective value (the server's default where unset), the names of
// those that are defaults under "defaults", env in full, and secrets by name only.
nlohmann::json settings_view(const FunctionSettings& settings, const EngineConfig& defaults);

// The complete form the store keeps (secret values included) and reads back. from_stored throws
// Error(internal) on a text it did not write.
std::string to_stored(const FunctionSettings& settings);
FunctionSettings from_stored(std::string_view text);

}  // namespace faas
