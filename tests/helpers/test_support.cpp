#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>

#include "util/subprocess.hpp"

namespace fs = std::filesystem;

namespace faas::testing {

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "faas-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

ErrorCode error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error";
  return ErrorCode::internal;
}

EngineConfig test_config(const fs::path& data_dir) {
  EngineConfig config;
  config.data_dir = data_dir;
  config.timeout = std::chrono::seconds(10);
  config.registry_poll = std::chrono::milliseconds(100);
  return config;
}

void make_wheel(const fs::path& dir, const std::string& name, const std::string& version) {
  auto result = run_process({"/usr/bin/python3", FAAS_TEST_HELPERS "/make_wheel.py", dir.string(), name, version}, {});
  if (!result.ok()) throw std::runtime_error("make_wheel.py failed: " + result.output);
}

void use_offline_wheels(const fs::path& wheel_dir) {
  ::setenv("PIP_NO_INDEX", "1", 1);
  ::setenv("PIP_FIND_LINKS", wheel_dir.c_str(), 1);
}

fs::path helper_program(const std::string& name) { return fs::path(FAAS_TEST_BINARY_DIR) / name; }

}  // namespace faas::testing
