// The counts behind Engine::stats (faas/stats.hpp), fed by the record writer for every record it commits. Each
// function keeps 60 one-minute slots (a ring indexed by the minute), each with a histogram fine enough for
// percentiles (buckets 1.25x apart, from 10 us to ~9 min), and a coarser one since start for Prometheus.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "faas/stats.hpp"
#include "sysinfo/sysinfo.hpp"

namespace faas {

class CallStats {
 public:
  static constexpr std::size_t window = 60;  // minutes

  void record(const std::string& function, bool ok, double duration_ms, std::chrono::system_clock::time_point end);
  // Samples the machine and this process for the minute that just ended (the engine calls it once a minute).
  void sample_server(std::chrono::system_clock::time_point now);
  void forget(const std::string& function);  // a deleted function
  Stats snapshot(std::chrono::system_clock::time_point now) const;

  static constexpr std::size_t fine_buckets = 80;
  // The fine bucket of a duration, and the duration a bucket stands for (its geometric middle).
  static std::size_t fine_bucket(double duration_ms);
  static double fine_bucket_ms(std::size_t bucket);

 private:
  struct Minute {
    std::int64_t minute = -1;
    std::uint32_t calls = 0, errors = 0;
    std::array<std::uint32_t, fine_buckets> histogram{};
  };
  struct PerFunction {
    std::array<Minute, window> minutes;
    std::uint64_t successes = 0, errors = 0;
    std::array<std::uint64_t, FunctionStats::histogram_bounds.size() + 1> histogram{};
    double duration_seconds = 0;
  };

  mutable std::mutex mutex_;
  std::map<std::string, PerFunction, std::less<>> functions_;
  std::array<ServerMinute, window> server_{};
  sysinfo::Sampler sampler_;  // its own: CPU over each minute, whatever status() samples meanwhile
};

}  // namespace faas
