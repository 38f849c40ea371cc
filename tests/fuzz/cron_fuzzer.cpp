// Fuzzes the cron expressions of functions' schedules (util/cron.cpp): any text either parses or is refused
// with Error(invalid_input), and a schedule that parses answers matches() for any minute without trouble.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string_view>

#include "faas/error.hpp"
#include "util/cron.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto schedule = faas::CronSchedule::parse(text);
    std::tm minute{};
    for (int i = 0; i < 64; ++i) {  // minutes spread over a year, and some out of range
      minute.tm_min = (i * 7) % 61;
      minute.tm_hour = (i * 5) % 25;
      minute.tm_mday = i % 33;
      minute.tm_mon = i % 13;
      minute.tm_wday = i % 8;
      (void)schedule.matches(minute);
    }
  } catch (const faas::Error& e) {
    if (e.code() != faas::ErrorCode::invalid_input) __builtin_trap();
  }
  return 0;
}
