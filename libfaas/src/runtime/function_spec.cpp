#include "runtime/function_spec.hpp"

#include <algorithm>
#include <cstdio>

namespace faas::runtime {

std::string FunctionSpec::module_name() const {
  // Names may hold '.' and '-', which sys.modules would read as packages or reject; a hash keeps the result unique.
  std::string out = "faasfn_";
  std::uint32_t hash = 2166136261u;
  for (char c : name) {
    out.push_back((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_');
    hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  }
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, "_%08x_r%llu", hash, static_cast<unsigned long long>(revision));
  return out + suffix;
}

std::chrono::milliseconds call_timeout(const FunctionSpec& function, std::chrono::milliseconds requested) {
  return requested.count() > 0 ? std::min(requested, function.timeout) : function.timeout;
}

std::string timeout_message(std::chrono::milliseconds timeout) {
  char text[64];
  std::snprintf(text, sizeof text, "function exceeded its timeout of %g s", static_cast<double>(timeout.count()) / 1000);
  return text;
}

}  // namespace faas::runtime
