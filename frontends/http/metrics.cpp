// metrics.cpp — Prometheus exposition of the engine's counts and gauges and the HTTP server's counters.
#include "metrics.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace faas::http {

void Metrics::record_response(unsigned status) {
  responses_by_class_[std::min<unsigned>(status / 100, 5)].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const Status& status, const Stats& stats) const {
  // Function names are limited to [A-Za-z0-9_.-], so they need no escaping inside label values.
  fmt::memory_buffer out;
  auto add = [&out]<class... Args>(fmt::format_string<Args...> format, Args&&... args) {
    fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
  };
  add("# HELP faas_invocations_total Invocations completed, by function and status.\n"
      "# TYPE faas_invocations_total counter\n");
  for (const auto& f : stats.functions) {
    add("faas_invocations_total{{function=\"{}\",status=\"success\"}} {}\n", f.name, f.successes);
    add("faas_invocations_total{{function=\"{}\",status=\"error\"}} {}\n", f.name, f.errors);
  }
  add("# HELP faas_invocation_duration_seconds Time spent in the function.\n"
      "# TYPE faas_invocation_duration_seconds histogram\n");
  for (const auto& f : stats.functions) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < FunctionStats::histogram_bounds.size(); ++i) {
      cumulative += f.histogram[i];
      add("faas_invocation_duration_seconds_bucket{{function=\"{}\",le=\"{}\"}} {}\n", f.name,
          FunctionStats::histogram_bounds[i], cumulative);
    }
    add("faas_invocation_duration_seconds_bucket{{function=\"{}\",le=\"+Inf\"}} {}\n", f.name, f.successes + f.errors);
    add("faas_invocation_duration_seconds_sum{{function=\"{}\"}} {}\n", f.name, f.duration_seconds);
    add("faas_invocation_duration_seconds_count{{function=\"{}\"}} {}\n", f.name, f.successes + f.errors);
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
  add("# HELP faas_workers Worker processes, by state (process isolation).\n# TYPE faas_workers gauge\n"
      "faas_workers{{state=\"busy\"}} {}\nfaas_workers{{state=\"idle\"}} {}\n", status.workers_busy,
      status.workers - std::min(status.workers, status.workers_busy));
  add("# HELP faas_process_resident_memory_bytes Resident memory of the server.\n"
      "# TYPE faas_process_resident_memory_bytes gauge\nfaas_process_resident_memory_bytes {}\n",
      static_cast<std::uint64_t>(status.process_rss_mb * 1024 * 1024));
  add("# HELP faas_uptime_seconds Seconds since the server started.\n# TYPE faas_uptime_seconds gauge\n"
      "faas_uptime_seconds {}\n", status.uptime_seconds);
  return fmt::to_string(out);
}

}  // namespace faas::http
