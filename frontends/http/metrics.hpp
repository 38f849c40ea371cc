// metrics.hpp — GET /metrics in the Prometheus text format (version 0.0.4): the engine's per-function counters
// and histograms (Engine::stats, which counts every call, whatever made it) and gauges (Engine::status), and the
// HTTP server's own counters, kept here.
//
// Thread safety: every method may be called from any thread (the counters are atomics).
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

  // The text a Prometheus scraper reads.
  std::string render(const Status& status, const Stats& stats) const;

 private:
  std::atomic<std::uint64_t> uploads_ok_{0}, uploads_failed_{0};
  std::atomic<std::uint64_t> async_retries_{0}, dead_letters_{0};
  std::array<std::atomic<std::uint64_t>, 6> responses_by_class_{};  // index = status / 100
  std::atomic<std::int64_t> connections_{0};
};

}  // namespace faas::http
