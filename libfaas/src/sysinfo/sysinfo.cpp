#include "sysinfo/sysinfo.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace faas::sysinfo {

namespace {

struct MemInfo {
  double total_kb = 0, available_kb = 0;
};

MemInfo read_meminfo() {
  MemInfo info;
  std::ifstream in("/proc/meminfo");
  std::string key;
  double value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemTotal:") info.total_kb = value;
    if (key == "MemAvailable:") info.available_kb = value;
  }
  return info;
}

double read_rss_mb() {
  std::ifstream in("/proc/self/statm");
  double size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

}  // namespace

Sampler::Sampler() : last_(read_cpu()) {}

Sampler::CpuTimes Sampler::read_cpu() {
  CpuTimes times;
  times.at = std::chrono::steady_clock::now();
  static const double ticks_per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));

  std::ifstream self("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  auto after_name = content.rfind(')');  // the command name may hold spaces and parentheses
  if (after_name != std::string::npos) {
    std::istringstream fields(content.substr(after_name + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int index = 3; fields >> field; ++index) {  // field 3 is the state; utime is 14, stime 15
      if (index == 14) utime = std::stod(field);
      if (index == 15) {
        stime = std::stod(field);
        break;
      }
    }
    times.process_seconds = (utime + stime) / ticks_per_second;
  }

  std::ifstream stat("/proc/stat");
  std::string cpu;
  stat >> cpu;
  std::uint64_t value = 0;
  for (int index = 0; index < 8 && stat >> value; ++index) {  // user nice system idle iowait irq softirq steal
    times.machine_total += value;
    if (index != 3 && index != 4) times.machine_busy += value;
  }
  return times;
}

Sample Sampler::sample() {
  auto now = read_cpu();
  CpuTimes before;
  {
    std::lock_guard lock(mutex_);
    before = last_;
    last_ = now;
  }
  Sample out;
  double wall = std::chrono::duration<double>(now.at - before.at).count();
  if (wall > 0) out.process_cpu_percent = 100.0 * (now.process_seconds - before.process_seconds) / wall;
  auto total = now.machine_total - before.machine_total;
  if (total > 0) out.cpu_percent = 100.0 * static_cast<double>(now.machine_busy - before.machine_busy) / total;

  auto memory = read_meminfo();
  out.memory_total_mb = memory.total_kb / 1024.0;
  out.memory_available_mb = memory.available_kb / 1024.0;
  out.memory_used_mb = (memory.total_kb - memory.available_kb) / 1024.0;
  if (memory.total_kb > 0) out.memory_percent = 100.0 * (memory.total_kb - memory.available_kb) / memory.total_kb;
  out.process_rss_mb = read_rss_mb();
  return out;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace faas::sysinfo
