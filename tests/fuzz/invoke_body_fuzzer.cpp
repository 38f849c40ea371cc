// libFuzzer target for the invocation-body parser (parse_invoke_body in libfaas/src/invocation.cpp), which reads
// every HTTP and MQTT invocation. Accepted bodies must give args that are a JSON array and kwargs that are empty
// or a JSON object, both as text nlohmann reads back; refused ones must say invalid_input. Anything else, or a
// crash or sanitizer report, is a finding.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "faas/error.hpp"
#include "faas/invocation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  faas::InvokeRequest request;
  try {
    faas::parse_invoke_body(body, request);
  } catch (const faas::Error& e) {
    if (e.code() != faas::ErrorCode::invalid_input) std::abort();
    return 0;
  }
  auto args = nlohmann::json::parse(request.args, nullptr, false);
  if (args.is_discarded() || !args.is_array()) std::abort();
  if (!request.kwargs.empty()) {
    auto kwargs = nlohmann::json::parse(request.kwargs, nullptr, false);
    if (kwargs.is_discarded() || !kwargs.is_object()) std::abort();
  }
  return 0;
}
