// Fuzzes faas-coap's bounded memories with what peers control: which peer, message id, block offsets and sizes,
// declared sizes, echoed challenges, and the passing of time. Whatever the sequence, the bounds hold and nothing
// crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "exchanges.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace faas::coap;
  Exchanges::Limits limits;
  limits.per_peer = 4;
  limits.total = 16;
  limits.max_bytes = 4096;
  Exchanges exchanges(limits);
  Bodies bodies(Bodies::Limits{2, 2048, std::chrono::seconds(60)});
  Addresses addresses(std::chrono::seconds(60), 8);
  auto now = Exchanges::Clock::now();
  const std::size_t max_body = 1024;

  std::size_t at = 0;
  auto next = [&]() -> std::uint8_t { return at < size ? data[at++] : 0; };
  while (at < size) {
    const std::uint8_t op = next();
    const std::string peer = "p" + std::to_string(next() % 12);
    switch (op % 5) {
      case 0: {  // an answer kept, then looked up
        const std::uint16_t id = static_cast<std::uint16_t>(next() << 8 | next());
        exchanges.remember(peer, id, Answer{205, std::string(next() * 8u, 'x'), -1}, now);
        exchanges.find(peer, id, now);
        break;
      }
      case 1: {  // a block of a body
        const std::size_t offset = static_cast<std::size_t>(next()) * 16;
        const std::string block(next(), 'b');
        const bool more = next() & 1;
        const std::size_t declared = static_cast<std::size_t>(next()) * 32;
        std::string body;
        auto step = bodies.add(peer, peer + std::to_string(next() % 3), offset, block, more, declared, max_body, now,
                               body);
        if (step == Bodies::Step::complete && body.size() > max_body) std::abort();
        break;
      }
      case 2: {  // a challenge, echoed right or wrong
        auto challenge = addresses.challenge(peer, now);
        if (next() & 1) challenge[0] = static_cast<char>(challenge[0] ^ 1);
        addresses.verified(peer, challenge, now);
        break;
      }
      case 3:  // calls start and end
        if (next() & 1) {
          exchanges.start_call(peer);
        } else {
          exchanges.end_call(peer);
        }
        break;
      case 4:  // time passes
        now += std::chrono::seconds(next());
        break;
    }
    if (exchanges.size() > limits.total || exchanges.bytes() > limits.max_bytes || bodies.bytes() > 2048 ||
        addresses.size() > 8) {
      std::abort();
    }
  }
  return 0;
}
