// metrics.hpp — counters behind GET /metrics, rendered in the Prometheus text format (version 0.0.4).
//
// Thread safety: every method may be called from any thread; the per-function table takes a mutex, the
// server-wide counters are atomics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "faas/engine.hpp"

namespace faas::http {

class Metrics {
 public:
  static constexpr std::array<double, 16> duration_buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                           0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                           1,      2.5,     10,     30};

  void record_invocation(std::string_view function, bool ok, double duration_ms);
  void record_upload(bool ok) { (ok ? uploads_ok_ : uploads_failed_).fetch_add(1, std::memory_order_relaxed); }
  // An asynchronous call that finished after `attempts` attempts, a success or a dead letter.
  void record_async(unsigned attempts, bool dead) {
    async_retries_.fetch_add(attempts > 1 ? attempts - 1 : 0, std::memory_order_relaxed);
    if (dead) dead_letters_.fetch_add(1, std::memory_order_relaxed);
  }
  void record_response(unsigned status);
  void connection_opened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t connections() const { return connections_.load(std::memory_order_relaxed); }

  // The text a Prometheus scraper reads; `status` supplies the engine's gauges.
  std::string render(const Status& status) const;

 private:
  struct FunctionCounters {
    std::uint64_t success = 0, error = 0;
    std::array<std::uint64_t, duration_buckets.size()> buckets{};  // non-cumulative; summed when rendered
    double duration_sum_seconds = 0;
  };

  mutable std::mutex mutex_;
  std::map<std::string, FunctionCounters, std::less<>> functions_;
  std::atomic<std::uint64_t> uploads_ok_{0}, uploads_failed_{0};
  std::atomic<std::uint64_t> async_retries_{0}, dead_letters_{0};
  std::array<std::atomic<std::uint64_t>, 6> responses_by_class_{};  // index = status / 100
  std::atomic<std::int64_t> connections_{0};
};

}  // namespace faas::http
