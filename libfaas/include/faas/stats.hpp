// faas/stats.hpp — what the engine counts of its calls (Engine::stats): per function, each minute of the last hour
// (calls, errors, duration percentiles) and totals since start (the /metrics counters and histogram), and the
// server's CPU and memory per minute. Kept in memory, so it starts empty with the process.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace faas {

struct MinuteStats {
  std::int64_t minute = 0;  // minutes since the Unix epoch (UTC)
  std::uint64_t calls = 0, errors = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;  // of the calls' durations; 0 without calls
};

struct FunctionStats {
  // Upper bounds (seconds) of the duration histogram kept since start; a last, unbounded one is implied.
  static constexpr std::array<double, 16> histogram_bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                           0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                           1,      2.5,     10,     30};
  std::string name;
  std::vector<MinuteStats> minutes;  // the last 60, oldest first, the current one last (zeros where idle)
  MinuteStats hour;                  // the same over those 60 minutes (its `minute`: the first of them)
  std::uint64_t successes = 0, errors = 0;  // since start
  std::array<std::uint64_t, histogram_bounds.size() + 1> histogram{};  // calls per bucket, not cumulative
  double duration_seconds = 0;                                        // their sum
};

struct ServerMinute {
  std::int64_t minute = 0;
  bool sampled = false;              // the engine was up at that minute's end
  double cpu_percent = 0;            // the whole machine, over that minute
  double process_cpu_percent = 0;    // this process, over that minute; 100 = one core
  double process_rss_mb = 0;         // at its end
};

struct Stats {
  std::int64_t minute = 0;              // the current minute
  std::vector<FunctionStats> functions; // those called since start, by name
  std::vector<ServerMinute> server;     // the last 60 minutes, oldest first
};

// The /admin/stats shape (docs/http.md#statistics): durations in milliseconds, minutes as ISO 8601 UTC times.
void to_json(nlohmann::json& out, const Stats& stats);

}  // namespace faas
