// Function names: the one check that keeps every request inside the data dir.
#pragma once

#include <string_view>

namespace faas {

// True for ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ without "..": such a name is a single, safe path component.
bool is_valid_function_name(std::string_view name) noexcept;

// Throws Error(invalid_name) with a message that says what is allowed.
void check_function_name(std::string_view name);

}  // namespace faas
