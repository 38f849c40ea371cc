// Virtualenvs for functions' requirements, content-addressed: <data-dir>/envs/<id>/ where <id> is the hash of the
// normalised requirements, so identical requirements share one env and an unchanged re-upload reuses it.
//
// An env is built in a temporary directory (`python -m venv --without-pip`, then the system pip's `--python`
// install, which saves ~5 s and 25 MB per env) and renamed into place only when complete. A lock file makes
// concurrent builds of one env, from threads or processes, build it once.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "faas/config.hpp"
#include <string_view>

namespace faas::envs {

struct VenvOptions {
  std::filesystem::path envs_dir;
  std::filesystem::path python = "/usr/bin/python3";
  std::chrono::seconds pip_timeout{std::chrono::minutes(5)};
  std::string site_packages_suffix;  // "lib/python3.11/site-packages", as the embedded interpreter expects
  std::string pip_index;             // --index-url for pip; empty: pip's default and the PIP_* settings
  const WorkerConfig* sandbox = nullptr;  // set: pip (and any build backend it runs) runs in the worker sandbox
};

// The requirements without blank lines, comments and surrounding spaces; empty when nothing is required.
std::string normalize_requirements(std::string_view requirements);
// The env id for normalised requirements (empty for none).
std::string env_id(std::string_view normalized_requirements);

class VenvCache {
 public:
  explicit VenvCache(VenvOptions options);

  // The env's site-packages directory, building the env first when it does not exist (blocking, up to the pip
  // timeout). Throws Error(build_failed) with the tail of pip's output.
  std::filesystem::path ensure(const std::string& id, std::string_view normalized_requirements);
  bool exists(const std::string& id) const;
  std::filesystem::path site_packages(const std::string& id) const;
  // Removes temporary directories left by an interrupted build.
  void remove_leftovers();

 private:
  VenvOptions options_;
};

}  // namespace faas::envs
