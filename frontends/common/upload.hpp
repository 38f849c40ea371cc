// upload.hpp — the JSON upload both servers accept: {"code_b64": ..., "req_b64": ...?} in standard base64, and
// optionally "settings": a merge patch of the function's settings (faas/function_settings.hpp).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace faas::frontend {

struct UploadSource {
  std::string code;
  std::optional<std::string> requirements;
  nlohmann::json settings;  // null: the function keeps its settings
};

// Decodes `code_b64` (required) and `req_b64` (optional; null counts as absent) of a JSON object, and takes its
// `settings` (an object, optional). Throws Error(invalid_input) naming the field that is missing, not a string,
// not valid base64, or (settings) not an object.
UploadSource decode_upload(const nlohmann::json& body);

// The string field `key` of a JSON object: nullopt when absent or null. Throws Error(invalid_input) when it is
// required and missing, or not a string.
std::optional<std::string> string_field(const nlohmann::json& body, const char* key, bool required);

}  // namespace faas::frontend
