// metrics.cpp — Prometheus exposition of invocation, upload, HTTP and engine counters.
#include "metrics.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace faas::http {

void Metrics::record_invocation(std::string_view function, bool ok, double duration_ms) {
  const double seconds = duration_ms / 1000;
  auto bucket = std::lower_bound(duration_buckets.begin(), duration_buckets.end(), seconds) - duration_buckets.begin();
  std::lock_guard lock(mutex_);
  auto it = functions_.find(function);
  if (it == functions_.end()) it = functions_.emplace(std::string(function), FunctionCounters{}).first;
  auto& counters = it->second;
  ++(ok ? counters.success : counters.error);
  if (bucket < static_cast<std::ptrdiff_t>(duration_buckets.size())) ++counters.buckets[bucket];
  counters.duration_sum_seconds += seconds;
}

void Metrics::record_response(unsigned status) {
  responses_by_class_[std::min<unsigned>(status / 100, 5)].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const Status& status) const {
  // Function names are limited to [A-Za-z0-9_.-], so they need no escaping inside label values.
  fmt::memory_buffer out;
  auto add = [&out]<class... Args>(fmt::format_string<Args...> format, Args&&... args) {
    fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
  };
  {
    std::lock_guard lock(mutex_);
    add("# HELP faas_invocations_total Invocations completed, by function and status.\n"
        "# TYPE faas_invocations_total counter\n");
    for (const auto& [name, c] : functions_) {
      add("faas_invocations_total{{function=\"{}\",status=\"success\"}} {}\n", name, c.success);
      add("faas_invocations_total{{function=\"{}\",status=\"error\"}} {}\n", name, c.error);
    }
    add("# HELP faas_invocation_duration_seconds Time spent in the function.\n"
        "# TYPE faas_invocation_duration_seconds histogram\n");
    for (const auto& [name, c] : functions_) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < duration_buckets.size(); ++i) {
        cumulative += c.buckets[i];
        add("faas_invocation_duration_seconds_bucket{{function=\"{}\",le=\"{}\"}} {}\n", name, duration_buckets[i],
            cumulative);
      }
      add("faas_invocation_duration_seconds_bucket{{function=\"{}\",le=\"+Inf\"}} {}\n", name, c.success + c.error);
      add("faas_invocation_duration_seconds_sum{{function=\"{}\"}} {}\n", name, c.duration_sum_seconds);
      add("faas_invocation_duration_seconds_count{{function=\"{}\"}} {}\n", name, c.success + c.error);
    }
  }
  add("# HELP faas_schedule_runs_total Calls fired by functions' schedules.\n"
      "# TYPE faas_schedule_runs_total counter\nfaas_schedule_runs_total {}\n", status.scheduled);
  add("# HELP faas_invocations_in_flight Invocations accepted and not yet answered.\n"
      "# TYPE faas_invocations_in_flight gauge\nfaas_invocations_in_flight {}\n", status.in_flight);
  add("# HELP faas_invocations_queued Invocations waiting for an executor thread.\n"
      "# TYPE faas_invocations_queued gauge\nfaas_invocations_queued {}\n", status.queued);
  add("# HELP faas_uploads_total Uploads, by outcome.\n# TYPE faas_uploads_total counter\n"
      "faas_uploads_total{{status=\"success\"}} {}\nfaas_uploads_total{{status=\"error\"}} {}\n",
      uploads_ok_.load(), uploads_failed_.load());
  add("# HELP faas_async_retries_total Attempts of asynchronous calls after their first.\n"
      "# TYPE faas_async_retries_total counter\nfaas_async_retries_total {}\n"
      "# HELP faas_dead_letters_total Asynchronous calls that used up their attempts.\n"
      "# TYPE faas_dead_letters_total counter\nfaas_dead_letters_total {}\n",
      async_retries_.load(), dead_letters_.load());
  add("# HELP faas_loaded_functions Functions ready to run.\n# TYPE faas_loaded_functions gauge\n"
      "faas_loaded_functions {}\n", status.loaded_functions);
  add("# HELP faas_http_responses_total HTTP responses, by status class.\n"
      "# TYPE faas_http_responses_total counter\n");
  for (unsigned i = 1; i < responses_by_class_.size(); ++i) {
    add("faas_http_responses_total{{code=\"{}xx\"}} {}\n", i, responses_by_class_[i].load());
  }
  add("# HELP faas_http_connections Open HTTP connections.\n# TYPE faas_http_connections gauge\n"
      "faas_http_connections {}\n", connections_.load());
  add("# HELP faas_process_resident_memory_megabytes Resident memory of the server.\n"
      "# TYPE faas_process_resident_memory_megabytes gauge\nfaas_process_resident_memory_megabytes {}\n",
      status.process_rss_mb);
  add("# HELP faas_uptime_seconds Seconds since the server started.\n# TYPE faas_uptime_seconds gauge\n"
      "faas_uptime_seconds {}\n", status.uptime_seconds);
  return fmt::to_string(out);
}

}  // namespace faas::http
