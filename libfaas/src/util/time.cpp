#include "util/time.hpp"

#include <ctime>

#include "faas/invocation.hpp"

namespace faas {

void append_local_time(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto micros = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto seconds = micros / 1'000'000;
  auto fraction = micros % 1'000'000;
  if (fraction < 0) {
    fraction += 1'000'000;
    --seconds;
  }
  thread_local long long cached_second = -1;
  thread_local char cached_text[20];  // "YYYY-MM-DD HH:MM:SS"
  if (seconds != cached_second) {
    std::time_t as_time_t = static_cast<std::time_t>(seconds);
    std::tm local{};
    localtime_r(&as_time_t, &local);
    std::strftime(cached_text, sizeof cached_text, "%Y-%m-%d %H:%M:%S", &local);
    cached_second = seconds;
  }
  out.append(cached_text, 19);
  char digits[7];
  for (int i = 5; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + fraction % 10);
    fraction /= 10;
  }
  out.push_back('.');
  out.append(digits, 6);
}

std::optional<std::chrono::system_clock::time_point> parse_local_time(std::string_view text) {
  if (text.size() < 19 || text.size() > 26) return std::nullopt;
  std::tm local{};
  std::string head(text.substr(0, 19));
  const char* end = ::strptime(head.c_str(), "%Y-%m-%d %H:%M:%S", &local);
  if (end == nullptr || *end != '\0') return std::nullopt;
  long micros = 0;
  if (text.size() > 19) {
    if (text[19] != '.' || text.size() == 20) return std::nullopt;
    int digits = 0;
    for (char c : text.substr(20)) {
      if (c < '0' || c > '9') return std::nullopt;
      micros = micros * 10 + (c - '0');
      ++digits;
    }
    for (; digits < 6; ++digits) micros *= 10;
  }
  local.tm_isdst = -1;
  std::time_t seconds = std::mktime(&local);
  if (seconds == -1) return std::nullopt;
  return std::chrono::system_clock::from_time_t(seconds) + std::chrono::microseconds(micros);
}

std::string format_local_time(Invocation::Clock::time_point t) {
  std::string out;
  append_local_time(out, t);
  return out;
}

}  // namespace faas
