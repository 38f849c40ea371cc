// wire.hpp — the MQTT 3.1.1 and 5 packets faas-mqtt speaks as a client, encoded and decoded.
//
// Why our own client: a request acknowledged to the broker must already be in the store, and Paho C (like
// libmosquitto) sends a QoS 1 PUBACK as soon as the PUBLISH arrives, before the application has seen it. Owning the
// few packets a server needs (CONNECT, SUBSCRIBE, PUBLISH and PUBACK both ways, PINGREQ, DISCONNECT) lets
// transport.cpp acknowledge a request only once it is committed. Everything read here comes from the network:
// decode() checks every length against the packet and throws ProtocolError on anything malformed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace faas::mqtt::wire {

enum PacketType : std::uint8_t {
  connect = 1, connack = 2, publish = 3, puback = 4, pubrec = 5, pubrel = 6, pubcomp = 7,
  subscribe = 8, suback = 9, unsubscribe = 10, unsuback = 11, pingreq = 12, pingresp = 13, disconnect = 14,
  auth = 15,
};

// The protocol levels in CONNECT.
constexpr int v311 = 4;
constexpr int v5 = 5;

struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --- encoding (appends one packet to `out`) ---

struct Will {
  std::string topic;
  std::string payload;
  bool retain = true;
};

struct ConnectOptions {
  int version = v5;
  std::string client_id;
  bool clean_start = false;
  std::uint16_t keep_alive_s = 30;
  std::uint32_t session_expiry_s = 0;      // v5 only
  std::uint16_t receive_maximum = 65535;   // v5 only: QoS 1 requests the broker may have unacknowledged with us
  std::uint32_t maximum_packet_size = 0;   // v5 only; 0: not sent (no limit)
  std::optional<Will> will;                // at QoS 1
  std::string username, password;          // empty: not sent
};

void put_connect(std::string& out, const ConnectOptions& options);
// QoS 1 subscriptions to `filters`. Without Retain As Published the broker clears the retain flag of live
// messages, so a set flag means "from the broker's store of retained messages".
void put_subscribe(std::string& out, int version, std::uint16_t packet_id, const std::vector<std::string>& filters);
// A QoS 1 publication (packet_id != 0) or QoS 0 (packet_id == 0). `correlation` goes out as Correlation Data (v5).
void put_publish(std::string& out, int version, std::string_view topic, std::string_view payload,
                 std::uint16_t packet_id, bool retain, bool dup, std::string_view correlation = {});
void put_puback(std::string& out, std::uint16_t packet_id);
void put_pingreq(std::string& out);
void put_disconnect(std::string& out);

// --- decoding ---

struct ConnAck {
  bool session_present = false;
  std::uint8_t code = 0;                   // 0: accepted
  std::uint16_t receive_maximum = 65535;   // v5: the broker's limit on our unacknowledged QoS 1 publications
  std::optional<std::uint16_t> server_keep_alive;
  std::uint32_t maximum_packet_size = 0;   // 0: none given
  std::string reason;
};

struct Publish {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;
  std::string response_topic;  // v5 Response Topic
  std::string correlation;     // v5 Correlation Data
  std::string traceparent;     // v5 User Property "traceparent" (W3C trace context)
};

struct PubAck {
  std::uint16_t packet_id = 0;
  std::uint8_t code = 0;
};

struct SubAck {
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> codes;  // one per filter: the granted QoS, or >= 0x80 for a refusal
};

struct PingResp {};

struct Disconnect {
  std::uint8_t code = 0;
  std::string reason;
};

using Packet = std::variant<ConnAck, Publish, PubAck, SubAck, PingResp, Disconnect>;

// The fixed header at the start of `bytes`: the first byte, the remaining length and the header's own size.
// nullopt when more bytes are needed; ProtocolError when the length is malformed.
struct FixedHeader {
  std::uint8_t first = 0;
  std::size_t remaining = 0;
  std::size_t size = 0;
  PacketType type() const { return static_cast<PacketType>(first >> 4); }
};
std::optional<FixedHeader> read_fixed_header(std::string_view bytes);

// One packet from the broker: `first` is its first byte, `body` its remaining bytes. Throws ProtocolError on a
// malformed packet or one a broker never sends to a client.
Packet decode(std::uint8_t first, std::string_view body, int version);

// The topic and packet id at the start of a PUBLISH body too large to keep (the rest is skipped): enough to
// acknowledge it and say why it was refused. nullopt while `head` is too short for them.
struct PublishHead {
  std::string topic;
  std::uint8_t qos = 0;
  std::uint16_t packet_id = 0;
};
std::optional<PublishHead> decode_publish_head(std::uint8_t first, std::string_view head);

}  // namespace faas::mqtt::wire
