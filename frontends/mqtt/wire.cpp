// wire.cpp — MQTT packet encoding and bounds-checked decoding (OASIS MQTT 3.1.1 and 5.0, sections 2 and 3).
#include "wire.hpp"

namespace faas::mqtt::wire {
namespace {

// v5 property identifiers we write or read by name.
enum Property : std::uint8_t {
  session_expiry = 0x11, receive_maximum = 0x21, maximum_packet_size = 0x27, server_keep_alive = 0x13,
  response_topic = 0x08, correlation_data = 0x09, reason_string = 0x1F, topic_alias = 0x23, user_property = 0x26,
};

void put_u16(std::string& out, std::uint16_t value) {
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value & 0xFF));
}

void put_u32(std::string& out, std::uint32_t value) {
  put_u16(out, static_cast<std::uint16_t>(value >> 16));
  put_u16(out, static_cast<std::uint16_t>(value & 0xFFFF));
}

void put_varint(std::string& out, std::size_t value) {
  do {
    auto byte = static_cast<std::uint8_t>(value % 128);
    value /= 128;
    if (value > 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (value > 0);
}

// A length-prefixed string or binary field; MQTT caps them at 65,535 bytes.
void put_field(std::string& out, std::string_view text) {
  if (text.size() > 0xFFFF) throw std::length_error("an MQTT string field is limited to 65535 bytes");
  put_u16(out, static_cast<std::uint16_t>(text.size()));
  out.append(text);
}

// Writes the fixed header for a body built in `body`, then the body.
void put_packet(std::string& out, std::uint8_t first, const std::string& body) {
  out.push_back(static_cast<char>(first));
  put_varint(out, body.size());
  out.append(body);
}

// Reads fields front to back, checking each length against what is left.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}

  std::uint8_t u8() {
    need(1);
    auto value = static_cast<std::uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return value;
  }
  std::uint16_t u16() {
    auto high = u8();
    return static_cast<std::uint16_t>(high << 8 | u8());
  }
  std::uint32_t u32() {
    auto high = u16();
    return static_cast<std::uint32_t>(high) << 16 | u16();
  }
  std::size_t varint() {
    std::size_t value = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      auto byte = u8();
      value |= static_cast<std::size_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    throw ProtocolError("a variable byte integer longer than four bytes");
  }
  std::string_view bytes(std::size_t count) {
    need(count);
    auto value = rest_.substr(0, count);
    rest_.remove_prefix(count);
    return value;
  }
  std::string_view field() { return bytes(u16()); }
  std::string_view rest() {
    auto value = rest_;
    rest_ = {};
    return value;
  }
  bool empty() const { return rest_.empty(); }

 private:
  void need(std::size_t count) const {
    if (rest_.size() < count) throw ProtocolError("a packet shorter than its fields");
  }
  std::string_view rest_;
};

// Calls `take(id, reader)` for each v5 property; `take` reads the ones it knows and returns false for the rest,
// which are skipped by their type.
template <class Take>
void read_properties(Reader& packet, Take take) {
  Reader properties(packet.bytes(packet.varint()));
  while (!properties.empty()) {
    auto id = static_cast<std::uint8_t>(properties.varint());
    if (take(id, properties)) continue;
    switch (id) {
      case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
        properties.u8();
        break;
      case 0x13: case 0x21: case 0x22: case 0x23:
        properties.u16();
        break;
      case 0x02: case 0x11: case 0x18: case 0x27:
        properties.u32();
        break;
      case 0x0B:
        properties.varint();
        break;
      case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1A: case 0x1C: case 0x1F:
        properties.field();
        break;
      case 0x26:
        properties.field();
        properties.field();
        break;
      default:
        throw ProtocolError("an unknown property " + std::to_string(id));
    }
  }
}

}  // namespace

void put_connect(std::string& out, const ConnectOptions& options) {
  std::string body;
  put_field(body, "MQTT");
  body.push_back(static_cast<char>(options.version));
  std::uint8_t flags = 0;
  if (!options.username.empty()) flags |= 0x80;
  if (!options.password.empty()) flags |= 0x40;
  if (options.will) flags |= static_cast<std::uint8_t>(0x04 | 0x08 | (options.will->retain ? 0x20 : 0));
  if (options.clean_start) flags |= 0x02;
  body.push_back(static_cast<char>(flags));
  put_u16(body, options.keep_alive_s);
  if (options.version == v5) {
    std::string properties;
    properties.push_back(static_cast<char>(session_expiry));
    put_u32(properties, options.session_expiry_s);
    properties.push_back(static_cast<char>(receive_maximum));
    put_u16(properties, options.receive_maximum);
    if (options.maximum_packet_size != 0) {
      properties.push_back(static_cast<char>(maximum_packet_size));
      put_u32(properties, options.maximum_packet_size);
    }
    put_varint(body, properties.size());
    body += properties;
  }
  put_field(body, options.client_id);
  if (options.will) {
    if (options.version == v5) put_varint(body, 0);  // no will properties
    put_field(body, options.will->topic);
    put_field(body, options.will->payload);
  }
  if (!options.username.empty()) put_field(body, options.username);
  if (!options.password.empty()) put_field(body, options.password);
  put_packet(out, connect << 4, body);
}

void put_subscribe(std::string& out, int version, std::uint16_t packet_id, const std::vector<std::string>& filters) {
  std::string body;
  put_u16(body, packet_id);
  if (version == v5) put_varint(body, 0);
  for (const auto& filter : filters) {
    put_field(body, filter);
    body.push_back(1);  // QoS 1
  }
  put_packet(out, subscribe << 4 | 0x02, body);
}

void put_publish(std::string& out, int version, std::string_view topic, std::string_view payload,
                 std::uint16_t packet_id, bool retain, bool dup, std::string_view correlation) {
  std::string head;
  put_field(head, topic);
  if (packet_id != 0) put_u16(head, packet_id);
  if (version == v5) {
    if (correlation.empty()) {
      put_varint(head, 0);
    } else {
      std::string properties;
      properties.push_back(static_cast<char>(correlation_data));
      put_field(properties, correlation);
      put_varint(head, properties.size());
      head += properties;
    }
  }
  auto first = static_cast<std::uint8_t>(publish << 4 | (packet_id != 0 ? 0x02 : 0) | (retain ? 0x01 : 0) |
                                         (dup ? 0x08 : 0));
  // The payload is appended straight to `out`: answers can be megabytes and need no second copy.
  out.push_back(static_cast<char>(first));
  put_varint(out, head.size() + payload.size());
  out += head;
  out.append(payload);
}

void put_puback(std::string& out, std::uint16_t packet_id) {
  out.push_back(static_cast<char>(puback << 4));
  out.push_back(2);  // v5 too: a success without properties may stop after the packet id
  put_u16(out, packet_id);
}

void put_pingreq(std::string& out) {
  out.push_back(static_cast<char>(pingreq << 4));
  out.push_back(0);
}

void put_disconnect(std::string& out) {
  out.push_back(static_cast<char>(disconnect << 4));
  out.push_back(0);  // v5: reason 0, normal disconnection; the broker drops our will
}

std::optional<FixedHeader> read_fixed_header(std::string_view bytes) {
  if (bytes.size() < 2) return std::nullopt;
  FixedHeader header;
  header.first = static_cast<std::uint8_t>(bytes[0]);
  std::size_t shift = 0;
  for (std::size_t i = 1; i <= 4; ++i) {
    if (i >= bytes.size()) return std::nullopt;
    auto byte = static_cast<std::uint8_t>(bytes[i]);
    header.remaining |= static_cast<std::size_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) {
      header.size = i + 1;
      return header;
    }
    shift += 7;
  }
  throw ProtocolError("a remaining length longer than four bytes");
}

Packet decode(std::uint8_t first, std::string_view body, int version) {
  Reader packet(body);
  const bool is_v5 = version == v5;
  switch (static_cast<PacketType>(first >> 4)) {
    case connack: {
      ConnAck ack;
      ack.session_present = (packet.u8() & 0x01) != 0;
      ack.code = packet.u8();
      if (is_v5 && !packet.empty()) {
        read_properties(packet, [&](std::uint8_t id, Reader& property) {
          switch (id) {
            case receive_maximum: ack.receive_maximum = property.u16(); break;
            case server_keep_alive: ack.server_keep_alive = property.u16(); break;
            case maximum_packet_size: ack.maximum_packet_size = property.u32(); break;
            case reason_string: ack.reason = property.field(); break;
            default: return false;
          }
          return true;
        });
      }
      if (ack.receive_maximum == 0) throw ProtocolError("a Receive Maximum of 0");
      return ack;
    }
    case publish: {
      Publish message;
      message.qos = (first >> 1) & 0x03;
      message.retain = (first & 0x01) != 0;
      message.dup = (first & 0x08) != 0;
      if (message.qos == 3) throw ProtocolError("a PUBLISH with QoS 3");
      message.topic = packet.field();
      if (message.topic.empty() || message.topic.find_first_of("+#") != std::string::npos ||
          message.topic.find('\0') != std::string::npos) {
        throw ProtocolError("a PUBLISH to an empty or wildcard topic");
      }
      if (message.qos > 0) {
        message.packet_id = packet.u16();
        if (message.packet_id == 0) throw ProtocolError("a PUBLISH with packet id 0");
      }
      if (is_v5) {
        read_properties(packet, [&](std::uint8_t id, Reader& property) {
          switch (id) {
            case response_topic: message.response_topic = property.field(); break;
            case correlation_data: message.correlation = property.field(); break;
            case topic_alias: throw ProtocolError("a topic alias, which we never allowed");
            case user_property: {
              auto key = property.field();
              auto value = property.field();
              if (key == "traceparent") message.traceparent = std::move(value);
              break;
            }
            default: return false;
          }
          return true;
        });
      }
      message.payload = packet.rest();
      return message;
    }
    case puback: {
      PubAck ack;
      ack.packet_id = packet.u16();
      if (!packet.empty()) ack.code = packet.u8();  // v5; properties may follow and are of no use to us
      return ack;
    }
    case suback: {
      SubAck ack;
      ack.packet_id = packet.u16();
      if (is_v5) read_properties(packet, [](std::uint8_t, Reader&) { return false; });
      for (auto code : packet.rest()) ack.codes.push_back(static_cast<std::uint8_t>(code));
      if (ack.codes.empty()) throw ProtocolError("a SUBACK without return codes");
      return ack;
    }
    case pingresp:
      return PingResp{};
    case disconnect: {
      Disconnect bye;
      if (!packet.empty()) bye.code = packet.u8();
      if (is_v5 && !packet.empty()) {
        read_properties(packet, [&](std::uint8_t id, Reader& property) {
          if (id != reason_string) return false;
          bye.reason = property.field();
          return true;
        });
      }
      return bye;
    }
    default:
      throw ProtocolError("a packet of type " + std::to_string(first >> 4) + ", which a broker does not send us");
  }
}

std::optional<PublishHead> decode_publish_head(std::uint8_t first, std::string_view head) {
  if (head.size() < 2) return std::nullopt;
  PublishHead out;
  out.qos = (first >> 1) & 0x03;
  if (out.qos == 3) throw ProtocolError("a PUBLISH with QoS 3");
  auto topic_size = static_cast<std::size_t>(static_cast<std::uint8_t>(head[0]) << 8 | static_cast<std::uint8_t>(head[1]));
  std::size_t needed = 2 + topic_size + (out.qos > 0 ? 2 : 0);
  if (head.size() < needed) return std::nullopt;
  Reader packet(head);
  out.topic = packet.field();
  if (out.qos > 0) out.packet_id = packet.u16();
  return out;
}

}  // namespace faas::mqtt::wire
