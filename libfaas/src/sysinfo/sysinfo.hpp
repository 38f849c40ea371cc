// Process and machine figures for status(), read from /proc.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>


namespace faas::sysinfo {

// This machine's host name ("localhost" when it has none).
std::string host_name();

// One reading of this process and the machine.
struct Sample {
  double cpu_percent = 0;          // whole machine, since the previous sample
  double process_cpu_percent = 0;  // this process, since the previous sample; 100 = one core
  double process_rss_mb = 0;
  double memory_total_mb = 0, memory_available_mb = 0, memory_used_mb = 0, memory_percent = 0;
};

// CPU percentages cover the time since the previous sample (since
// construction for the first), as psutil's cpu_percent(interval=None) does. Thread-safe.
class Sampler {
 public:
  Sampler();
  Sample sample();

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
