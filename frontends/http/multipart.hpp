// multipart.hpp — a small multipart/form-data parser (RFC 7578) for uploads; no library here has one.
//
// It works on the whole body in memory (the server bounds its size) and returns views into it: no copies of
// file contents. Every malformed input is an Error(invalid_input) that says what is wrong; it never reads
// outside the body. Fuzzed by tests/fuzz/multipart_fuzzer.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faas::http {

struct FormPart {
  std::string name;                     // the form field's name
  std::optional<std::string> filename;  // set for file fields
  std::string content_type;             // empty when the part has none
  std::string_view data;                // a view into the parsed body
};

struct MultipartLimits {
  std::size_t max_parts = 16;
  std::size_t max_header_bytes = 8 * 1024;  // per part
};

// The boundary parameter of a `multipart/form-data; boundary=...` Content-Type. Throws Error(invalid_input)
// for another media type or a missing or invalid boundary.
std::string multipart_boundary(std::string_view content_type);

// Splits `body` into its parts. Throws Error(invalid_input) on malformed or truncated input.
std::vector<FormPart> parse_multipart(std::string_view body, std::string_view boundary,
                                      const MultipartLimits& limits = {});

// The first part named `name`, or null.
const FormPart* find_part(const std::vector<FormPart>& parts, std::string_view name);

}  // namespace faas::http
