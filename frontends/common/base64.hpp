// base64.hpp — strict base64 decoding for uploads and credentials sent by clients.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace faas::frontend {

// Decodes standard base64 (RFC 4648 §4, with padding). Whitespace such as the line breaks of `base64 FILE` is
// skipped; any other character outside the alphabet, or a wrong length or padding, gives nullopt.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace faas::frontend
