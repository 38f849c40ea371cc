// libFuzzer target for faas-mqtt's MQTT decoder (frontends/mqtt/wire.cpp): the bytes a broker, or whoever answers
// on its port, sends. The first byte picks the protocol version; the rest is read as a stream of packets the way
// transport.cpp reads it (fixed header, then the body, or only the head of a PUBLISH too large to keep). A
// malformed packet must end in ProtocolError; a PUBLISH that decodes must decode the same after it is encoded
// again. Anything else is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "wire.hpp"

namespace wire = faas::mqtt::wire;

namespace {

constexpr std::size_t max_packet = 1024;  // small, so that the too-large path is reached too

void check_round_trip(int version, const wire::Publish& message) {
  std::string again;
  wire::put_publish(again, version, message.topic, message.payload, message.packet_id, message.retain, message.dup,
                    version == wire::v5 ? message.correlation : std::string_view{});
  auto header = wire::read_fixed_header(again);
  if (!header || header->size + header->remaining != again.size()) std::abort();
  auto copy = std::get<wire::Publish>(
      wire::decode(header->first, std::string_view(again).substr(header->size), version));
  if (copy.topic != message.topic || copy.payload != message.payload || (copy.qos > 0) != (message.qos > 0) ||
      copy.packet_id != message.packet_id || copy.retain != message.retain || copy.dup != message.dup) {
    std::abort();
  }
  if (version == wire::v5 && copy.correlation != message.correlation) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  int version = (data[0] & 1) != 0 ? wire::v5 : wire::v311;
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    while (auto header = wire::read_fixed_header(stream)) {
      auto rest = stream.substr(header->size);
      if (header->remaining > max_packet) {
        if (header->type() != wire::publish) return 0;
        auto head = wire::decode_publish_head(header->first, rest.substr(0, std::min(rest.size(), header->remaining)));
        if (!head) return 0;
        if (rest.size() < header->remaining) return 0;
        stream = rest.substr(header->remaining);
        continue;
      }
      if (rest.size() < header->remaining) return 0;
      auto packet = wire::decode(header->first, rest.substr(0, header->remaining), version);
      if (auto* message = std::get_if<wire::Publish>(&packet)) check_round_trip(version, *message);
      stream = rest.substr(header->remaining);
    }
  } catch (const wire::ProtocolError&) {
  }
  return 0;
}
