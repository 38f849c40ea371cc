#include "util/ids.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace faas {

namespace {

std::uint64_t random_word() {
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq entropy{device(), device(), device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(entropy);
  }();
  return generator();
}

std::string format_uuid(std::uint64_t hi, std::uint64_t lo) {
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant

  static constexpr char hex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](std::uint64_t word, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = hex[(word >> (i * 4)) & 0xf];
    }
  };
  put(hi, 16);
  put(lo, 16);
  return out;
}

// Writes `word` as 16 lowercase hex digits at `out`.
void put_hex(char* out, std::uint64_t word) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, word >>= 4) out[i] = hex[word & 0xf];
}

std::uint64_t nonzero_random_word() {
  for (;;) {
    if (auto word = random_word()) return word;
  }
}

bool lower_hex(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

std::string make_trace_id() {  // one allocation: this runs for every call
  std::string id(32, '0');
  put_hex(id.data(), nonzero_random_word());
  put_hex(id.data() + 16, random_word());
  return id;
}

std::string make_span_id() {
  std::string id(16, '0');
  put_hex(id.data(), nonzero_random_word());
  return id;
}

std::optional<TraceParent> parse_traceparent(std::string_view header) {
  // version(2) - trace-id(32) - parent-id(16) - flags(2), and for versions after 00 maybe "-" and more.
  if (header.size() < 55 || header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  auto version = header.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return std::nullopt;
  if (header.size() > 55 && (version == "00" || header[55] != '-')) return std::nullopt;
  TraceParent parsed{std::string(header.substr(3, 32)), std::string(header.substr(36, 16)),
                     std::string(header.substr(53, 2))};
  if (!lower_hex(parsed.trace_id) || !lower_hex(parsed.parent_id) || !lower_hex(parsed.flags)) return std::nullopt;
  if (parsed.trace_id == std::string(32, '0') || parsed.parent_id == std::string(16, '0')) return std::nullopt;
  return parsed;
}

std::string make_uuid4() { return format_uuid(random_word(), random_word()); }

std::string make_uuid_at(std::uint64_t millis, std::uint64_t tag) {
  std::uint64_t hi = (millis << 16) | (tag >> 52);  // bits 12-15 take the version nibble
  return format_uuid(hi, tag);
}

std::string make_time_ordered_uuid() {
  static std::atomic<std::uint64_t> last{0};  // milliseconds << 12 | counter
  auto millis = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
  std::uint64_t previous = last.load(std::memory_order_relaxed);
  std::uint64_t next = 0;
  do {
    next = std::max(millis << 12, previous + 1);
  } while (!last.compare_exchange_weak(previous, next, std::memory_order_relaxed));
  std::uint64_t hi = ((next >> 12) << 16) | (next & 0xfff);  // bits 12-15 take the version nibble
  return format_uuid(hi, random_word());
}

}  // namespace faas
