// The JSON forms of the engine's vocabulary (function info, status, stats) and the small conversions the façade offers.
#include <chrono>
#include <cmath>
#include <ctime>

#include <nlohmann/json.hpp>

#include "faas/config.hpp"
#include "faas/engine.hpp"

namespace faas {

std::string join_json_array(const std::vector<std::string>& items) {
  std::size_t size = 2;
  for (const auto& item : items) size += item.size() + 1;
  std::string out;
  out.reserve(size);
  out.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += items[i];
  }
  out.push_back(']');
  return out;
}

std::string_view to_string(Isolation isolation) noexcept {
  return isolation == Isolation::process ? "process" : "inprocess";
}

Isolation parse_isolation(std::string_view text) {
  if (text == "inprocess") return Isolation::inprocess;
  if (text == "process") return Isolation::process;
  throw Error(ErrorCode::invalid_input, "isolation must be 'inprocess' or 'process', not '" + std::string(text) + "'");
}

FunctionNetwork parse_function_network(std::string_view text) {
  if (text == "host") return FunctionNetwork::host;
  if (text == "none") return FunctionNetwork::none;
  throw Error(ErrorCode::invalid_input, "the function network must be 'host' or 'none', not '" + std::string(text) + "'");
}

void to_json(nlohmann::json& out, const FunctionInfo& info) {
  out = {{"name", info.name},
         {"version", info.version},
         {"created_at", info.created_at},
         {"updated_at", info.updated_at},
         {"has_requirements", info.has_requirements},
         {"code_sha256", info.code_sha256},
         {"env_id", info.env_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.env_id)}};
}

void to_json(nlohmann::json& out, const FunctionVersion& version) {
  out = {{"version", version.version},
         {"created_at", version.created_at},
         {"has_requirements", version.has_requirements},
         {"code_sha256", version.code_sha256},
         {"env_id", version.env_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(version.env_id)},
         {"current", version.current}};
}

void to_json(nlohmann::json& out, const Status& status) {
  out = {{"status", "running"},
         {"uptime", status.uptime_seconds},
         {"cpu_percent", status.cpu_percent},
         {"ram_percent", status.ram_percent},
         {"loaded_functions", status.loaded_functions},
         {"cpu_usage_absolute",
          {{"process_milicpu", status.process_milicpu}, {"process_cpu_percent", status.process_cpu_percent}}},
         {"memory_usage_absolute", {{"process_rss_mb", status.process_rss_mb}}},
         {"system_memory_info",
          {{"total_mb", status.system_memory.total_mb},
           {"available_mb", status.system_memory.available_mb},
           {"used_mb", status.system_memory.used_mb},
           {"percent", status.system_memory.percent}}},
         {"invocations",
          {{"total", status.invocations}, {"errors", status.invocation_errors}, {"in_flight", status.in_flight}, {"queued", status.queued},
           {"scheduled", status.scheduled}}},
         {"workers", {{"total", status.workers}, {"busy", status.workers_busy}}},
         {"isolation", status.isolation},
         {"timestamp", status.timestamp},
         {"node", status.node},
         {"store", status.store},
         {"nodes", status.nodes}};
}

void to_json(nlohmann::json& out, const NodeInfo& node) {
  out = {{"id", node.id},
         {"self", node.self},
         {"alive", node.alive},
         {"started_at", node.started_at},
         {"seen_at", node.seen_at},
         {"seen_seconds_ago", node.seen_seconds_ago},
         {"status", nlohmann::json::parse(node.status, nullptr, false)}};
  if (out["status"].is_discarded()) out["status"] = nlohmann::json::object();
}

namespace {

std::string iso_minute(std::int64_t minute) {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::time_point(std::chrono::minutes(minute)));
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%MZ", &utc);
  return text;
}

double round3(double value) { return std::round(value * 1000) / 1000; }

nlohmann::json minute_json(const MinuteStats& m) {
  return {{"minute", iso_minute(m.minute)}, {"calls", m.calls},           {"errors", m.errors},
          {"p50_ms", round3(m.p50_ms)},     {"p95_ms", round3(m.p95_ms)}, {"p99_ms", round3(m.p99_ms)}};
}

}  // namespace

void to_json(nlohmann::json& out, const Stats& stats) {
  out = nlohmann::json::object();
  out["minute"] = iso_minute(stats.minute);
  auto& functions = out["functions"] = nlohmann::json::object();
  for (const auto& function : stats.functions) {
    auto minutes = nlohmann::json::array();
    for (const auto& m : function.minutes) minutes.push_back(minute_json(m));
    auto hour = minute_json(function.hour);
    hour.erase("minute");
    functions[function.name] = {{"minutes", std::move(minutes)}, {"hour", std::move(hour)},
                                {"successes", function.successes}, {"errors", function.errors}};
  }
  auto server = nlohmann::json::array();
  for (const auto& m : stats.server) {
    nlohmann::json minute{{"minute", iso_minute(m.minute)}};
    if (m.sampled) {
      minute["cpu_percent"] = round3(m.cpu_percent);
      minute["process_cpu_percent"] = round3(m.process_cpu_percent);
      minute["process_rss_mb"] = round3(m.process_rss_mb);
    }
    server.push_back(std::move(minute));
  }
  out["server"] = std::move(server);
}

}  // namespace faas
