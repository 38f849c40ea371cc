// Engine::upload and Engine::remove: a new version is staged in a folder of its own, built and imported there,
// and only then swapped in place of the old one, under a lock that orders uploads and deletes of one name
// across threads and processes.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine_state.hpp"
#include "envs/requirements.hpp"
#include "util/files.hpp"
#include "util/hash.hpp"
#include "util/ids.hpp"
#include "util/names.hpp"

namespace fs = std::filesystem;

namespace faas {

namespace {

constexpr std::string_view staging_prefix = ".staging-";
constexpr std::string_view trash_prefix = ".trash-";

void remove_tree_quietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) spdlog::warn("cannot remove {}: {}", path.string(), ec.message());
}

fs::path lock_path(const fs::path& functions_dir, const std::string& name) {
  return functions_dir / ("." + name + ".lock");
}

// update_settings() with the name's lock held.
FunctionSettings update_settings_locked(EngineState& engine, const std::string& name, const nlohmann::json& patch) {
  auto updated = engine.functions->update_settings(
      name, [&patch](FunctionSettings& settings) { apply_settings_patch(settings, patch); });
  if (!updated) throw Error(ErrorCode::not_found, "function '" + name + "' not found");
  auto& [info, settings] = *updated;
  engine.registry->put(info, settings);
  engine.executor->retire(name, info.revision);  // its workers restart with the new settings
  if (engine.config.isolation == Isolation::inprocess && (!settings.env.empty() || !settings.secrets.empty())) {
    spdlog::warn("function {}: env and secrets reach a function only under process isolation", name);
  }
  spdlog::info("changed the settings of function {}", name);
  return settings;
}

}  // namespace

void remove_upload_leftovers(const fs::path& functions_dir) {
  for (const auto& entry : fs::directory_iterator(functions_dir)) {
    auto file = entry.path().filename().string();
    if (file.rfind(staging_prefix, 0) == 0 || file.rfind(trash_prefix, 0) == 0) remove_tree_quietly(entry.path());
  }
}

FunctionInfo upload_function(EngineState& engine, std::string_view name, std::string_view code,
                             std::optional<std::string_view> requirements, const nlohmann::json* settings_patch) {
  check_function_name(name);
  if (settings_patch != nullptr && settings_patch->is_null()) settings_patch = nullptr;
  if (settings_patch != nullptr) {
    FunctionSettings scratch;
    apply_settings_patch(scratch, *settings_patch);  // a bad patch is refused before anything is built
  }
  if (!engine.accepting) throw Error(ErrorCode::shutting_down, "the engine is shutting down");
  std::string name_text(name);

  if (requirements) envs::check_requirements(*requirements);  // invalid_input naming the line
  auto normalized = envs::normalize_requirements(requirements.value_or(""));
  std::optional<std::string> requirements_text;
  if (!normalized.empty()) requirements_text = std::string(*requirements);
  FunctionInfo info;
  info.name = name_text;
  info.code_sha256 = sha256_hex(code);
  info.env_id = envs::env_id(normalized);
  info.has_requirements = requirements_text.has_value();
  auto unchanged = [&info](const std::optional<FunctionInfo>& current) {
    return current && current->code_sha256 == info.code_sha256 && current->env_id == info.env_id;
  };
  // Nothing to build for what the function already is (a client re-sending its upload, a retained message).
  if (auto current = engine.functions->find(name_text); unchanged(current)) {
    if (settings_patch != nullptr) update_settings(engine, name_text, *settings_patch);
    return *current;
  }

  std::vector<std::string> site_dirs;
  if (!info.env_id.empty()) site_dirs.push_back(engine.venvs->ensure(info.env_id, normalized).string());

  auto staging = engine.functions_dir / (std::string(staging_prefix) + make_uuid4());
  struct Cleanup {
    fs::path path;
    ~Cleanup() { remove_tree_quietly(path); }
  } cleanup{staging};
  fs::create_directories(staging);
  write_file_atomic(staging / "func.py", code);
  if (requirements_text) write_file_atomic(staging / "requirements.txt", *requirements_text);

  // One upload or delete of a name at a time, across threads and processes.
  FileLock lock(lock_path(engine.functions_dir, name_text));
  auto current = engine.functions->find(name_text);
  if (unchanged(current)) {  // the same upload, made meanwhile by another thread or process
    if (settings_patch != nullptr) update_settings_locked(engine, name_text, *settings_patch);
    return *current;
  }
  info.version = current ? current->version + 1 : 1;
  info.created_at = info.updated_at = format_local_time(Invocation::Clock::now());
  info.revision = engine.functions->reserve_revision();
  // Settings stay with the name across uploads (they change only through update_settings, under this lock).
  auto settings = engine.functions->settings(name_text).value_or(FunctionSettings{});
  if (settings_patch != nullptr) apply_settings_patch(settings, *settings_patch);

  auto staged = engine.registry->make_spec(info, settings);
  staged->staged_source = staging / "func.py";
  engine.executor->load(staged);  // throws build_failed; the old version keeps serving

  auto live = engine.registry->function_dir(name_text);
  bool replaced = fs::exists(live);
  if (replaced) {
    exchange_paths(staging, live);  // the old files move to `staging` and go with the cleanup
  } else {
    fs::rename(staging, live);
  }
  try {
    info = engine.functions->put(info, std::string(code), requirements_text,
                                 settings_patch != nullptr ? &settings : nullptr);
  } catch (...) {
    if (replaced) {
      exchange_paths(staging, live);
    } else {
      fs::rename(live, staging);
    }
    engine.executor->retire(name_text, current ? current->revision : 0);
    throw;
  }
  engine.registry->put(info, settings);
  spdlog::info("uploaded function {} v{}", info.name, info.version);
  return info;
}

FunctionSettings update_settings(EngineState& engine, std::string_view name, const nlohmann::json& patch) {
  check_function_name(name);
  std::string name_text(name);
  FileLock lock(lock_path(engine.functions_dir, name_text));  // ordered with uploads, which keep the settings
  return update_settings_locked(engine, name_text, patch);
}

void remove_function(EngineState& engine, std::string_view name) {
  check_function_name(name);
  std::string name_text(name);
  FileLock lock(lock_path(engine.functions_dir, name_text));
  if (!engine.functions->remove(name_text)) {
    throw Error(ErrorCode::not_found, "function '" + name_text + "' not found");
  }
  engine.registry->erase(name_text);
  engine.executor->retire(name_text, 0);
  auto trash = engine.functions_dir / (std::string(trash_prefix) + make_uuid4());
  std::error_code ec;
  fs::rename(engine.registry->function_dir(name_text), trash, ec);
  if (!ec) remove_tree_quietly(trash);
  spdlog::info("deleted function {}", name_text);
}

}  // namespace faas
