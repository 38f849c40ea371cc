// Wall-clock formatting as the records show it (the format of the original servers).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace faas {

// Appends local time as "YYYY-MM-DD HH:MM:SS.ffffff". Cheap on the hot path: the part up to the seconds is
// computed once per second per thread.
void append_local_time(std::string& out, std::chrono::system_clock::time_point t);

// Reads that form back ("YYYY-MM-DD HH:MM:SS", then optionally "." and up to six digits); nullopt otherwise.
std::optional<std::chrono::system_clock::time_point> parse_local_time(std::string_view text);

}  // namespace faas
