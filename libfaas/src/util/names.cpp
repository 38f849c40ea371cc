#include "util/names.hpp"

#include <string>

#include "faas/error.hpp"

namespace faas {

namespace {
bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

bool is_valid_function_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || !is_alnum(name.front())) return false;
  for (char c : name) {
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return name.find("..") == std::string_view::npos;
}

void check_function_name(std::string_view name) {
  if (is_valid_function_name(name)) return;
  std::string shown(name.substr(0, 80));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  throw Error(ErrorCode::invalid_name,
              "invalid function name '" + shown +
                  "': use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit, without '..'");
}

}  // namespace faas
