// faas/function_info.hpp — what the engine knows about one uploaded function (its current version).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace faas {

struct FunctionInfo {
  std::string name;
  std::uint64_t version = 0;    // 1 at the first upload, +1 at each upload that changed something
  std::string created_at;       // local time, "YYYY-MM-DD HH:MM:SS.ffffff"
  std::string updated_at;
  bool has_requirements = false;
  std::string code_sha256;
  std::string env_id;           // the virtualenv it runs in (requirements hash); empty without requirements
  std::uint64_t revision = 0;   // grows at every change of code or settings (not shown in its JSON form)
};
void to_json(nlohmann::json& out, const FunctionInfo& info);

// One version of a function's code that is kept (for rollback and pinned calls).
struct FunctionVersion {
  std::uint64_t version = 0;
  std::string created_at;       // when it was uploaded
  bool has_requirements = false;
  std::string code_sha256;
  std::string env_id;
  bool current = false;         // the version new calls run
};
void to_json(nlohmann::json& out, const FunctionVersion& version);

}  // namespace faas
