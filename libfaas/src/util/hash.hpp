// Content hashes (SHA-256, hex) for code and requirements.
#pragma once

#include <string>
#include <string_view>

namespace faas {

std::string sha256_hex(std::string_view data);

}  // namespace faas
