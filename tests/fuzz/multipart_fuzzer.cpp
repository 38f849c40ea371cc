// libFuzzer target for the multipart/form-data parser (frontends/http/multipart.cpp).
// Input: one byte giving the boundary's length, the boundary, then the body. A second entry point parses the
// whole input as a Content-Type header. Any crash, sanitizer report or view outside the body is a finding.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "faas/error.hpp"
#include "multipart.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    faas::http::multipart_boundary(input);
  } catch (const faas::Error&) {
  }

  std::size_t boundary_size = static_cast<std::uint8_t>(input[0]) % 72;
  input.remove_prefix(1);
  if (boundary_size > input.size()) return 0;
  std::string_view boundary = input.substr(0, boundary_size);
  std::string_view body = input.substr(boundary_size);
  try {
    auto parts = faas::http::parse_multipart(body, boundary);
    for (const auto& part : parts) {
      if (part.data.data() < body.data() || part.data.data() + part.data.size() > body.data() + body.size()) {
        std::abort();  // a view outside the body
      }
    }
    if (parts.size() > faas::http::MultipartLimits{}.max_parts) std::abort();
  } catch (const faas::Error& e) {
    if (e.code() != faas::ErrorCode::invalid_input) std::abort();
  }
  return 0;
}
