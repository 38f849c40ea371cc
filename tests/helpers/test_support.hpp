// Shared pieces of the C++ tests: temporary data dirs, test-time wheels, small function sources.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "faas/engine.hpp"

namespace faas::testing {

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The code of the Error `action` throws; a test failure (and ErrorCode::internal) when it throws none.
ErrorCode error_of(const std::function<void()>& action);

// An engine configuration on `data_dir` with test-friendly limits.
EngineConfig test_config(const std::filesystem::path& data_dir);

// Builds NAME-VERSION-py3-none-any.whl into `dir` (tests/helpers/make_wheel.py).
void make_wheel(const std::filesystem::path& dir, const std::string& name, const std::string& version);

// Points pip at `wheel_dir` only, for the rest of the process (PIP_NO_INDEX, PIP_FIND_LINKS).
void use_offline_wheels(const std::filesystem::path& wheel_dir);

// Path of a helper program built beside the tests.
std::filesystem::path helper_program(const std::string& name);

}  // namespace faas::testing
