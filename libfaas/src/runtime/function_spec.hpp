// One version of one function as the runtime sees it: where its code is and which virtualenv it runs in.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace faas::runtime {

// Immutable once made.
struct FunctionSpec {
  std::string name;
  std::uint64_t version = 0;
  std::filesystem::path source;          // its func.py
  std::filesystem::path staged_source;   // at upload, before the files are in place: where func.py is for now
  std::vector<std::string> site_dirs;    // its virtualenv's site-packages; empty without requirements

  // The sys.modules name for this version: unique per name and version, a valid identifier.
  std::string module_name() const;
};

// The error text of a call that ran past `timeout`, the same for every executor.
std::string timeout_message(std::chrono::milliseconds timeout);

}  // namespace faas::runtime
