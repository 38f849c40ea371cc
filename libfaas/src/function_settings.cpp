// Per-function settings: the merge patch an admin sends, the view an admin reads, the form the store keeps.
#include "faas/function_settings.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "faas/error.hpp"
#include "util/cron.hpp"

using nlohmann::json;

namespace faas {

namespace {

// Bounds that keep a worker's start (argv, environment) and the settings' row small.
constexpr std::size_t max_variables = 256;
constexpr std::size_t max_variable_name = 128;
constexpr std::size_t max_variable_value = 32 * 1024;
constexpr std::size_t max_variables_bytes = 256 * 1024;
constexpr double max_timeout_s = 24 * 3600;
constexpr std::size_t max_memory_mb = 1024 * 1024;
constexpr unsigned max_workers_limit = 256;
constexpr unsigned max_concurrency_limit = 100000;
constexpr std::size_t max_schedule = 16;
constexpr std::size_t max_schedule_arguments = 16 * 1024;

[[noreturn]] void refuse(const std::string& message) { throw Error(ErrorCode::invalid_input, message); }

unsigned whole_number(const json& value, const char* key, unsigned low, unsigned high) {
  if (!value.is_number_unsigned() && !value.is_number_integer()) {
    refuse(std::string("setting '") + key + "' must be a whole number");
  }
  auto number = value.get<long long>();
  if (number < static_cast<long long>(low) || number > static_cast<long long>(high)) {
    refuse(std::string("setting '") + key + "' must be from " + std::to_string(low) + " to " + std::to_string(high));
  }
  return static_cast<unsigned>(number);
}

// Names a function's own code may use. The loader's (LD_*), the interpreter's (PYTHON*) and the server's
// (FAAS_*) are refused: they would change what runs the function, not what the function sees.
void check_variable_name(const std::string& name, const char* key) {
  auto bad = [&](const std::string& why) { refuse(std::string(key) + " name '" + name.substr(0, 64) + "' " + why); };
  if (name.empty() || name.size() > max_variable_name) bad("must be 1 to 128 characters");
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) bad("must match [A-Za-z_][A-Za-z0-9_]*");
  }
  for (const char* reserved : {"LD_", "PYTHON", "FAAS_"}) {
    if (name.rfind(reserved, 0) == 0) bad(std::string("is reserved (names starting with ") + reserved + ")");
  }
  if (name == "PATH" || name == "HOME") bad("is set by the server");
}

void patch_variables(std::map<std::string, std::string>& variables, const json& patch, const char* key,
                     const std::map<std::string, std::string>& other, const char* other_key) {
  if (patch.is_null()) {
    variables.clear();
    return;
  }
  if (!patch.is_object()) refuse(std::string("setting '") + key + "' must be an object of names to strings");
  for (const auto& [name, value] : patch.items()) {
    check_variable_name(name, key);
    if (value.is_null()) {
      variables.erase(name);
      continue;
    }
    if (!value.is_string()) refuse(std::string(key) + " '" + name + "' must be a string");
    const auto& text = value.get_ref<const std::string&>();
    if (text.size() > max_variable_value) refuse(std::string(key) + " '" + name + "' is longer than 32 KiB");
    if (text.find('\0') != std::string::npos) refuse(std::string(key) + " '" + name + "' holds a NUL character");
    if (other.count(name) != 0) {
      refuse("'" + name + "' is already one of the " + other_key + "; remove it there first");
    }
    variables[name] = text;
  }
}

template <class T, class Parse>
void patch_optional(std::optional<T>& field, const json& patch, const char* key, Parse parse) {
  if (!patch.contains(key)) return;
  const json& value = patch.at(key);
  if (value.is_null()) {
    field.reset();
  } else {
    field = parse(value);
  }
}

// "schedule": a list of {"cron": "...", "args": [...]?, "kwargs": {...}?} or of plain cron strings.
std::vector<ScheduledCall> parse_schedule(const json& value) {
  if (value.is_null()) return {};
  if (!value.is_array()) refuse("setting 'schedule' must be a list of {\"cron\": ..., \"args\": [...]}");
  if (value.size() > max_schedule) refuse("a function may have at most 16 schedule entries");
  std::vector<ScheduledCall> out;
  for (const auto& item : value) {
    ScheduledCall call;
    if (item.is_string()) {
      call.cron = item.get<std::string>();
    } else if (item.is_object()) {
      for (const auto& [key, field] : item.items()) {
        if (key != "cron" && key != "args" && key != "kwargs") refuse("unknown key '" + key.substr(0, 32) + "' in 'schedule'");
      }
      if (!item.contains("cron") || !item["cron"].is_string()) refuse("each 'schedule' entry needs a \"cron\" string");
      call.cron = item["cron"].get<std::string>();
      if (item.contains("args") && !item["args"].is_null()) {
        if (!item["args"].is_array()) refuse("a schedule entry's \"args\" must be an array");
        call.args = item["args"].dump();
      }
      if (item.contains("kwargs") && !item["kwargs"].is_null()) {
        if (!item["kwargs"].is_object()) refuse("a schedule entry's \"kwargs\" must be an object");
        call.kwargs = item["kwargs"].dump();
      }
      if (call.args.size() + call.kwargs.size() > max_schedule_arguments) {
        refuse("a schedule entry's arguments may hold at most 16 KiB");
      }
    } else {
      refuse("each 'schedule' entry is a cron string or an object with \"cron\"");
    }
    CronSchedule::parse(call.cron);  // invalid_input saying what is wrong
    out.push_back(std::move(call));
  }
  return out;
}

json schedule_json(const std::vector<ScheduledCall>& schedule) {
  json out = json::array();
  for (const auto& call : schedule) {
    json entry{{"cron", call.cron}, {"args", json::parse(call.args)}};
    if (!call.kwargs.empty()) entry["kwargs"] = json::parse(call.kwargs);
    out.push_back(std::move(entry));
  }
  return out;
}

json variables_json(const std::map<std::string, std::string>& variables) {
  json out = json::object();
  for (const auto& [name, value] : variables) out[name] = value;
  return out;
}

}  // namespace

void apply_settings_patch(FunctionSettings& settings, const json& patch) {
  if (!patch.is_object()) refuse("settings must be a JSON object");
  static const char* const known[] = {"timeout", "memory_mb", "min_workers", "max_workers", "max_concurrency",
                                      "network", "public", "env", "secrets", "schedule", "max_attempts",
                                      "retry_delay"};
  for (const auto& [key, value] : patch.items()) {
    if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return key == k; }) ==
        std::end(known)) {
      refuse("unknown setting '" + key.substr(0, 64) + "'");
    }
  }
  FunctionSettings next = settings;
  patch_optional(next.timeout, patch, "timeout", [](const json& value) {
    if (!value.is_number()) refuse("setting 'timeout' must be a number of seconds");
    double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds < 0.001 || seconds > max_timeout_s) {
      refuse("setting 'timeout' must be from 0.001 to 86400 seconds");
    }
    return std::chrono::milliseconds(static_cast<long long>(std::llround(seconds * 1000)));
  });
  patch_optional(next.memory_mb, patch, "memory_mb", [](const json& value) -> std::size_t {
    auto mb = whole_number(value, "memory_mb", 0, max_memory_mb);
    if (mb != 0 && mb < 64) refuse("setting 'memory_mb' must be 0 (no limit) or at least 64");
    return mb;
  });
  patch_optional(next.min_workers, patch, "min_workers",
                 [](const json& value) { return whole_number(value, "min_workers", 0, max_workers_limit); });
  patch_optional(next.max_workers, patch, "max_workers",
                 [](const json& value) { return whole_number(value, "max_workers", 1, max_workers_limit); });
  patch_optional(next.max_concurrency, patch, "max_concurrency",
                 [](const json& value) { return whole_number(value, "max_concurrency", 1, max_concurrency_limit); });
  patch_optional(next.network, patch, "network", [](const json& value) {
    if (!value.is_string()) refuse("setting 'network' must be \"host\" or \"none\"");
    return parse_function_network(value.get<std::string>());
  });
  patch_optional(next.max_attempts, patch, "max_attempts",
                 [](const json& value) { return whole_number(value, "max_attempts", 1, 10); });
  patch_optional(next.retry_delay, patch, "retry_delay", [](const json& value) {
    if (!value.is_number()) refuse("setting 'retry_delay' must be a number of seconds");
    double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 3600) {
      refuse("setting 'retry_delay' must be from 0 to 3600 seconds");
    }
    return std::chrono::milliseconds(static_cast<long long>(std::llround(seconds * 1000)));
  });
  patch_optional(next.is_public, patch, "public", [](const json& value) {
    if (!value.is_boolean()) refuse("setting 'public' must be true or false");
    return value.get<bool>();
  });
  if (patch.contains("env")) patch_variables(next.env, patch.at("env"), "env", next.secrets, "secrets");
  if (patch.contains("secrets")) patch_variables(next.secrets, patch.at("secrets"), "secrets", next.env, "env");
  if (patch.contains("schedule")) next.schedule = parse_schedule(patch.at("schedule"));  // a list is replaced whole

  if (next.min_workers && next.max_workers && *next.min_workers > *next.max_workers) {
    refuse("setting 'min_workers' must not exceed 'max_workers'");
  }
  std::size_t count = next.env.size() + next.secrets.size(), bytes = 0;
  for (const auto* variables : {&next.env, &next.secrets}) {
    for (const auto& [name, value] : *variables) bytes += name.size() + value.size() + 2;
  }
  if (count > max_variables) refuse("a function may have at most 256 env variables and secrets together");
  if (bytes > max_variables_bytes) refuse("a function's env variables and secrets may hold at most 256 KiB together");
  settings = std::move(next);
}

json settings_view(const FunctionSettings& settings, const EngineConfig& defaults) {
  json out = json::object();
  json from_defaults = json::array();
  auto put = [&](const char* key, const auto& field, json fallback, auto to_json_value) {
    if (field) {
      out[key] = to_json_value(*field);
    } else {
      out[key] = std::move(fallback);
      from_defaults.push_back(key);
    }
  };
  auto seconds = [](std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000; };
  auto same = [](auto value) { return json(value); };
  auto network_name = [](FunctionNetwork network) { return network == FunctionNetwork::none ? "none" : "host"; };
  const auto& workers = defaults.workers;
  put("timeout", settings.timeout, seconds(defaults.timeout), seconds);
  put("memory_mb", settings.memory_mb, workers.memory_limit_mb, same);
  put("min_workers", settings.min_workers, workers.min_per_function, same);
  put("max_workers", settings.max_workers, workers.max_per_function, same);
  put("max_concurrency", settings.max_concurrency, nullptr, same);  // unset: only the server's own limits
  put("network", settings.network, network_name(workers.network), network_name);
  put("public", settings.is_public, nullptr, same);  // unset: the frontend's --public-invoke decides
  put("max_attempts", settings.max_attempts, default_max_attempts, same);
  put("retry_delay", settings.retry_delay, seconds(default_retry_delay), seconds);
  out["env"] = variables_json(settings.env);
  json secret_names = json::array();
  for (const auto& [name, value] : settings.secrets) secret_names.push_back(name);
  out["secrets"] = std::move(secret_names);
  out["schedule"] = schedule_json(settings.schedule);
  out["defaults"] = std::move(from_defaults);
  return out;
}

std::string to_stored(const FunctionSettings& settings) {
  json out = json::object();
  if (settings.timeout) out["timeout_ms"] = settings.timeout->count();
  if (settings.memory_mb) out["memory_mb"] = *settings.memory_mb;
  if (settings.min_workers) out["min_workers"] = *settings.min_workers;
  if (settings.max_workers) out["max_workers"] = *settings.max_workers;
  if (settings.max_concurrency) out["max_concurrency"] = *settings.max_concurrency;
  if (settings.network) out["network"] = *settings.network == FunctionNetwork::none ? "none" : "host";
  if (settings.is_public) out["public"] = *settings.is_public;
  if (settings.max_attempts) out["max_attempts"] = *settings.max_attempts;
  if (settings.retry_delay) out["retry_delay_ms"] = settings.retry_delay->count();
  if (!settings.env.empty()) out["env"] = variables_json(settings.env);
  if (!settings.secrets.empty()) out["secrets"] = variables_json(settings.secrets);
  if (!settings.schedule.empty()) out["schedule"] = schedule_json(settings.schedule);
  return out.dump();
}

FunctionSettings from_stored(std::string_view text) {
  try {
    json in = json::parse(text);
    FunctionSettings settings;
    if (in.contains("timeout_ms")) settings.timeout = std::chrono::milliseconds(in.at("timeout_ms").get<long long>());
    if (in.contains("memory_mb")) settings.memory_mb = in.at("memory_mb").get<std::size_t>();
    if (in.contains("min_workers")) settings.min_workers = in.at("min_workers").get<unsigned>();
    if (in.contains("max_workers")) settings.max_workers = in.at("max_workers").get<unsigned>();
    if (in.contains("max_concurrency")) settings.max_concurrency = in.at("max_concurrency").get<unsigned>();
    if (in.contains("network")) settings.network = parse_function_network(in.at("network").get<std::string>());
    if (in.contains("public")) settings.is_public = in.at("public").get<bool>();
    if (in.contains("max_attempts")) settings.max_attempts = in.at("max_attempts").get<unsigned>();
    if (in.contains("retry_delay_ms")) {
      settings.retry_delay = std::chrono::milliseconds(in.at("retry_delay_ms").get<long long>());
    }
    if (in.contains("env")) settings.env = in.at("env").get<std::map<std::string, std::string>>();
    if (in.contains("secrets")) settings.secrets = in.at("secrets").get<std::map<std::string, std::string>>();
    if (in.contains("schedule")) settings.schedule = parse_schedule(in.at("schedule"));
    return settings;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::internal, std::string("unreadable function settings in the store: ") + e.what());
  }
}

}  // namespace faas
