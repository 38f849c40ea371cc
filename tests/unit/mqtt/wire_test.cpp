// faas-mqtt's MQTT packets: what we send is what the standard lays out, and what a broker sends is read or refused.
#include <gtest/gtest.h>

#include "wire.hpp"

namespace faas::mqtt::wire {
namespace {

// Splits one encoded packet into its first byte and body.
std::pair<std::uint8_t, std::string> split(const std::string& bytes) {
  auto header = read_fixed_header(bytes);
  EXPECT_TRUE(header);
  EXPECT_EQ(header->size + header->remaining, bytes.size());
  return {header->first, bytes.substr(header->size)};
}

TEST(MqttWire, ConnectCarriesTheWillTheSessionAndTheCredentials) {
  ConnectOptions options;
  options.version = v5;
  options.client_id = "node";
  options.keep_alive_s = 30;
  options.session_expiry_s = 86400;
  options.receive_maximum = 1000;
  options.will = Will{"faas/response/server/node", "offline", true};
  options.username = "u";
  options.password = "p";
  std::string bytes;
  put_connect(bytes, options);
  auto [first, body] = split(bytes);
  EXPECT_EQ(first, 0x10);
  EXPECT_EQ(body.substr(0, 7), std::string("\0\4MQTT\5", 7));
  // user, password, will retain, will QoS 1, will; not clean start
  EXPECT_EQ(static_cast<std::uint8_t>(body[7]), 0x80 | 0x40 | 0x20 | 0x08 | 0x04);
  EXPECT_EQ(body.substr(8, 2), std::string("\0\x1e", 2));
  // properties: session expiry (5 bytes) and receive maximum (3 bytes)
  EXPECT_EQ(body.substr(10, 9), std::string("\x08\x11\0\x01\x51\x80\x21\x03\xe8", 9));
  EXPECT_NE(body.find("faas/response/server/node"), std::string::npos);
}

TEST(MqttWire, PublishRoundTripsWithCorrelationData) {
  std::string bytes;
  std::string correlation("\0\xffid", 4);
  put_publish(bytes, v5, "faas/response/invoke/calc", R"({"result":3})", 42, false, true, correlation);
  auto [first, body] = split(bytes);
  auto message = std::get<Publish>(decode(first, body, v5));
  EXPECT_EQ(message.topic, "faas/response/invoke/calc");
  EXPECT_EQ(message.payload, R"({"result":3})");
  EXPECT_EQ(message.qos, 1);
  EXPECT_EQ(message.packet_id, 42);
  EXPECT_TRUE(message.dup);
  EXPECT_FALSE(message.retain);
  EXPECT_EQ(message.correlation, correlation);
}

TEST(MqttWire, PublishFromABrokerGivesItsResponseTopicAndSkipsOtherProperties) {
  std::string body = std::string("\0\x0b", 2) + "faas/invoke" + std::string("\0\x07", 2);
  std::string properties = std::string("\x08\0\x03r/1", 6) + std::string("\x26\0\1k\0\1v", 7) + "\x01\x01";
  body += static_cast<char>(properties.size()) + properties + "[1]";
  auto message = std::get<Publish>(decode(0x33, body, v5));
  EXPECT_EQ(message.response_topic, "r/1");
  EXPECT_EQ(message.payload, "[1]");
  EXPECT_TRUE(message.retain);
  EXPECT_EQ(message.packet_id, 7);
  // The same bytes under 3.1.1 have no properties: they are payload.
  auto plain = std::get<Publish>(decode(0x33, body, v311));
  EXPECT_EQ(plain.payload, static_cast<char>(properties.size()) + properties + "[1]");
}

TEST(MqttWire, AcknowledgementsAndPings) {
  std::string bytes;
  put_puback(bytes, 0x1234);
  EXPECT_EQ(bytes, std::string("\x40\x02\x12\x34", 4));
  bytes.clear();
  put_subscribe(bytes, v311, 1, {"faas/invoke/#", "faas/admin/#"});
  auto [first, body] = split(bytes);
  EXPECT_EQ(first, 0x82);
  EXPECT_EQ(body, std::string("\0\1\0\x0d" "faas/invoke/#\1\0\x0c" "faas/admin/#\1", 33));
  auto connack = std::get<ConnAck>(decode(0x20, std::string("\1\0\3\x21\0\x14", 6), v5));
  EXPECT_TRUE(connack.session_present);
  EXPECT_EQ(connack.receive_maximum, 20);
  auto suback = std::get<SubAck>(decode(0x90, std::string("\0\1\1\x80", 4), v311));
  EXPECT_EQ(suback.codes, (std::vector<std::uint8_t>{1, 0x80}));
  EXPECT_TRUE(std::holds_alternative<PingResp>(decode(0xD0, "", v311)));
}

TEST(MqttWire, MalformedPacketsAreProtocolErrors) {
  auto refuses = [](std::uint8_t first, const std::string& body, int version) {
    EXPECT_THROW(decode(first, body, version), ProtocolError) << std::hex << int(first);
  };
  refuses(0x32, std::string("\0\x09short", 7), v311);                   // topic longer than the packet
  refuses(0x36, std::string("\0\1t\0\1", 5), v311);                     // QoS 3
  refuses(0x32, std::string("\0\1t\0\0", 5), v311);                     // packet id 0
  refuses(0x30, std::string("\0\3a/#", 5), v311);                       // a wildcard topic
  refuses(0x30, std::string("\0\0", 2), v311);                          // an empty topic
  refuses(0x30, std::string("\0\1t\3\x23\0\1", 7), v5);                 // a topic alias we never allowed
  refuses(0x30, std::string("\0\1t\2\x7f\0", 6), v5);                   // an unknown property
  refuses(0x30, std::string("\0\1t\x05\x08\0\x09", 7), v5);             // a property longer than its block
  refuses(0x20, std::string("\0\0\3\x21\0\0", 6), v5);                  // Receive Maximum 0
  refuses(0x10, "", v311);                                              // CONNECT is not for clients
  refuses(0x90, std::string("\0\1", 2), v311);                          // SUBACK without codes
  EXPECT_THROW(read_fixed_header(std::string("\x30\xff\xff\xff\xff\x01", 6)), ProtocolError);
}

TEST(MqttWire, FixedHeaderWaitsForItsBytes) {
  EXPECT_FALSE(read_fixed_header(std::string("\x30", 1)));
  EXPECT_FALSE(read_fixed_header(std::string("\x30\x80", 2)));
  auto header = read_fixed_header(std::string("\x30\x80\x01", 3));
  ASSERT_TRUE(header);
  EXPECT_EQ(header->remaining, 128u);
  EXPECT_EQ(header->size, 3u);
}

TEST(MqttWire, TheHeadOfATooLargePublishNamesItsTopicAndId) {
  std::string head = std::string("\0\x0f", 2) + "faas/invoke/big" + std::string("\0\x05", 2);
  EXPECT_FALSE(decode_publish_head(0x32, head.substr(0, 10)));
  auto read = decode_publish_head(0x32, head + "xxxx");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->topic, "faas/invoke/big");
  EXPECT_EQ(read->packet_id, 5);
  EXPECT_EQ(read->qos, 1);
}

}  // namespace
}  // namespace faas::mqtt::wire
