// Engine::upload, rollback, update_settings and remove: a new version (or a kept one, at a rollback) is staged in
// a folder of its own, built and imported there, and only then swapped in place of the old one, under a lock
// that orders uploads, settings changes and deletes of one name across threads and processes.
#include <unordered_set>

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

// The files of a function's versions besides its current one, written when a call is pinned to one.
fs::path versions_dir(const fs::path& functions_dir, const std::string& name) {
  return functions_dir / ".versions" / name;
}

// Removes the files of versions the store no longer keeps.
void forget_dropped_versions(EngineState& engine, const std::string& name) {
  auto dir = versions_dir(engine.functions_dir, name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::unordered_set<std::string> kept;
  for (const auto& version : engine.functions->versions(name)) kept.insert(std::to_string(version.version));
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (kept.count(entry.path().filename().string()) == 0) remove_tree_quietly(entry.path());
  }
}

// update_settings() with the name's lock held.
FunctionSettings update_settings_locked(EngineState& engine, const std::string& name, const nlohmann::json& patch) {
  auto current = engine.functions->find(name);
  auto stored = engine.functions->settings(name);
  if (!current || !stored) throw Error(ErrorCode::not_found, "function '" + name + "' not found");
  FunctionSettings settings = *stored;
  apply_settings_patch(settings, patch);  // Error(invalid_input): nothing changes
  if (settings == *stored) return settings;  // a repeated patch: nothing to restart
  FunctionInfo info = *current;
  info.revision = engine.functions->reserve_revision();
  // As an upload does: a worker imports the function under the new settings first (an import that fails under
  // them refuses the change, and the old settings keep serving), then replaces the old workers; calls waiting
  // for a worker run on it.
  engine.executor->load(engine.registry->make_spec(info, settings));
  if (!engine.functions->save_settings(name, settings, info.revision)) {
    throw Error(ErrorCode::not_found, "function '" + name + "' not found");
  }
  engine.registry->put(info, settings);
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
                             std::optional<std::string_view> requirements, const nlohmann::json* settings_patch,
                             std::optional<std::uint64_t> rollback_to) {
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
  // A rollback changes nothing only when that version is already the current one; an upload, when the code and
  // requirements are what the function has.
  auto unchanged = [&info, rollback_to](const std::optional<FunctionInfo>& current) {
    if (rollback_to) return current && current->version == *rollback_to;
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
  // Meanwhile the registry writes no other version's files (another node's, through the store) under ours.
  struct Uploading {
    FunctionRegistry& registry;
    const std::string& name;
    ~Uploading() { registry.end_upload(name); }
  } uploading{*engine.registry, name_text};
  engine.registry->begin_upload(name_text);
  auto current = engine.functions->find(name_text);
  if (unchanged(current)) {  // the same upload, made meanwhile by another thread or process
    if (settings_patch != nullptr) update_settings_locked(engine, name_text, *settings_patch);
    return *current;
  }
  if (rollback_to && !current) throw Error(ErrorCode::not_found, "function '" + name_text + "' not found");
  info.version = rollback_to ? *rollback_to : engine.functions->next_version(name_text);
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
                                 settings_patch != nullptr ? &settings : nullptr, engine.config.keep_versions);
  } catch (...) {
    if (replaced) {
      exchange_paths(staging, live);
    } else {
      fs::rename(live, staging);
    }
    engine.executor->retire(name_text, current ? current->revision : 0);
    throw;
  }
  // The store gave it another number (an upload of the same name committed meanwhile by another node): what was
  // loaded under the staged one goes, and is loaded again under the new.
  if (info.revision != staged->revision) engine.executor->retire(name_text, info.revision);
  engine.registry->put(info, settings);
  forget_dropped_versions(engine, name_text);
  if (rollback_to) {
    spdlog::info("rolled function {} back to v{}", info.name, info.version);
  } else {
    spdlog::info("uploaded function {} v{}", info.name, info.version);
  }
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
  engine.call_stats.forget(name_text);
  engine.executor->retire(name_text, 0);
  for (const auto& pinned : engine.registry->erase_pinned(name_text)) engine.executor->retire(pinned, 0);
  auto trash = engine.functions_dir / (std::string(trash_prefix) + make_uuid4());
  std::error_code ec;
  fs::rename(engine.registry->function_dir(name_text), trash, ec);
  if (!ec) remove_tree_quietly(trash);
  remove_tree_quietly(versions_dir(engine.functions_dir, name_text));
  spdlog::info("deleted function {}", name_text);
}

}  // namespace faas
