// Writing JSON text by hand where no tree exists: Python objects and the invocation record (see invocation.hpp
// for why these stay text). Everything here produces strict, compact JSON.
#pragma once

#include <string>
#include <string_view>

namespace faas {

// Appends `text` (UTF-8) as a quoted JSON string.
void append_json_string(std::string& out, std::string_view text);

// Appends a finite double in the shortest form that reads back to the same value.
void append_json_number(std::string& out, double value);

}  // namespace faas
