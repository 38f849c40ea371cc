// Process and machine figures for status(), read from /proc.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

#include "faas/engine.hpp"

namespace faas::sysinfo {

// Fills the resource fields of Status. CPU percentages cover the time since the previous sample (since
// construction for the first), as psutil's cpu_percent(interval=None) does. Thread-safe.
class Sampler {
 public:
  Sampler();
  void sample(Status& status);

 private:
  struct CpuTimes {
    double process_seconds = 0;
    std::uint64_t machine_busy = 0;
    std::uint64_t machine_total = 0;
    std::chrono::steady_clock::time_point at;
  };
  static CpuTimes read_cpu();

  std::mutex mutex_;
  CpuTimes last_;
};

}  // namespace faas::sysinfo
