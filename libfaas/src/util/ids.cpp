#include "util/ids.hpp"

#include <array>
#include <cstdint>
#include <random>

namespace faas {

std::string make_uuid4() {
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  std::uint64_t hi = generator();
  std::uint64_t lo = generator();
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

}  // namespace faas
