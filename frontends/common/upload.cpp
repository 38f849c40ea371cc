#include "upload.hpp"

#include <nlohmann/json.hpp>

#include "base64.hpp"
#include "faas/error.hpp"

namespace faas::frontend {

std::optional<std::string> string_field(const nlohmann::json& body, const char* key, bool required) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (required) throw Error(ErrorCode::invalid_input, std::string("'") + key + "' is required");
    return std::nullopt;
  }
  if (!it->is_string()) throw Error(ErrorCode::invalid_input, std::string("'") + key + "' must be a string");
  return it->get<std::string>();
}

UploadSource decode_upload(const nlohmann::json& body) {
  auto decode = [&body](const char* key, bool required) -> std::optional<std::string> {
    auto text = string_field(body, key, required);
    if (!text) return std::nullopt;
    auto bytes = decode_base64(*text);
    if (!bytes) throw Error(ErrorCode::invalid_input, std::string("'") + key + "' is not valid base64");
    return bytes;
  };
  UploadSource source;
  source.code = *decode("code_b64", true);
  source.requirements = decode("req_b64", false);
  if (auto it = body.find("settings"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) throw Error(ErrorCode::invalid_input, "'settings' must be a JSON object");
    source.settings = *it;
  }
  return source;
}

}  // namespace faas::frontend
