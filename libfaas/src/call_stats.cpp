#include "call_stats.hpp"

#include <algorithm>
#include <cmath>

namespace faas {

namespace {

using std::chrono::system_clock;

constexpr double fine_base_ms = 0.01;
constexpr double fine_ratio = 1.25;

std::int64_t minute_of(system_clock::time_point t) {
  return std::chrono::floor<std::chrono::minutes>(t).time_since_epoch().count();
}

// The duration below which a share `q` of the calls counted in `histogram` fall.
template <class Histogram>
double percentile(const Histogram& histogram, std::uint64_t calls, double q) {
  if (calls == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(calls)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < histogram.size(); ++i) {
    seen += histogram[i];
    if (seen >= rank) return CallStats::fine_bucket_ms(i);
  }
  return CallStats::fine_bucket_ms(histogram.size() - 1);
}

}  // namespace

std::size_t CallStats::fine_bucket(double duration_ms) {
  if (!(duration_ms > fine_base_ms)) return 0;
  const double bucket = std::log(duration_ms / fine_base_ms) / std::log(fine_ratio);
  // Compared as a double first: a cast of a value past size_t's range is undefined.
  return bucket >= static_cast<double>(fine_buckets - 1) ? fine_buckets - 1 : static_cast<std::size_t>(bucket);
}

double CallStats::fine_bucket_ms(std::size_t bucket) {
  return fine_base_ms * std::pow(fine_ratio, static_cast<double>(bucket) + 0.5);
}

void CallStats::record(const std::string& function, bool ok, double duration_ms, system_clock::time_point end) {
  const auto minute = minute_of(end);
  const auto fine = fine_bucket(duration_ms);
  const double seconds = duration_ms / 1000;
  const auto& bounds = FunctionStats::histogram_bounds;
  const auto coarse = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  std::lock_guard lock(mutex_);
  auto it = functions_.find(function);
  if (it == functions_.end()) it = functions_.emplace(function, PerFunction{}).first;
  auto& counts = it->second;
  ++(ok ? counts.successes : counts.errors);
  ++counts.histogram[coarse];
  counts.duration_seconds += seconds;
  auto& slot = counts.minutes[static_cast<std::size_t>(minute) % window];
  if (slot.minute != minute) slot = Minute{minute};
  ++slot.calls;
  if (!ok) ++slot.errors;
  ++slot.histogram[fine];
}

void CallStats::sample_server(system_clock::time_point now) {
  auto reading = sampler_.sample();
  const auto minute = minute_of(now) - 1;  // the minute that just ended
  std::lock_guard lock(mutex_);
  server_[static_cast<std::size_t>(minute) % window] =
      ServerMinute{minute, true, reading.cpu_percent, reading.process_cpu_percent, reading.process_rss_mb};
}

void CallStats::forget(const std::string& function) {
  std::lock_guard lock(mutex_);
  functions_.erase(function);
}

Stats CallStats::snapshot(system_clock::time_point now) const {
  Stats out;
  out.minute = minute_of(now);
  const auto first = out.minute - static_cast<std::int64_t>(window) + 1;
  std::lock_guard lock(mutex_);
  for (const auto& [name, counts] : functions_) {
    FunctionStats function;
    function.name = name;
    function.successes = counts.successes;
    function.errors = counts.errors;
    function.histogram = counts.histogram;
    function.duration_seconds = counts.duration_seconds;
    std::array<std::uint64_t, fine_buckets> hour{};
    function.hour.minute = first;
    for (auto minute = first; minute <= out.minute; ++minute) {
      MinuteStats stats{minute};
      const auto& slot = counts.minutes[static_cast<std::size_t>(minute) % window];
      if (slot.minute == minute) {
        stats.calls = slot.calls;
        stats.errors = slot.errors;
        stats.p50_ms = percentile(slot.histogram, slot.calls, 0.50);
        stats.p95_ms = percentile(slot.histogram, slot.calls, 0.95);
        stats.p99_ms = percentile(slot.histogram, slot.calls, 0.99);
        for (std::size_t i = 0; i < fine_buckets; ++i) hour[i] += slot.histogram[i];
        function.hour.calls += slot.calls;
        function.hour.errors += slot.errors;
      }
      function.minutes.push_back(stats);
    }
    function.hour.p50_ms = percentile(hour, function.hour.calls, 0.50);
    function.hour.p95_ms = percentile(hour, function.hour.calls, 0.95);
    function.hour.p99_ms = percentile(hour, function.hour.calls, 0.99);
    out.functions.push_back(std::move(function));
  }
  for (auto minute = first; minute <= out.minute; ++minute) {
    const auto& slot = server_[static_cast<std::size_t>(minute) % window];
    out.server.push_back(slot.minute == minute && slot.sampled ? slot : ServerMinute{minute});
  }
  return out;
}

}  // namespace faas
