// config.hpp — what faas-mqtt is told at start (filled from the command line in main.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace faas::mqtt {

struct MqttConfig {
  std::string broker = "tcp://localhost:1883";  // tcp:// or ssl:// (mqtt://, mqtts://)
  std::string client_id;                        // stable across restarts: the broker keeps its session by it
  std::string base_topic = "faas";
  std::string response_topic = "faas/response";
  std::string username;
  std::string password;
  std::string shared_group;                     // set: invocations through $share/<group>/<base>/invoke/+
  int mqtt_version = 5;                         // 5, or 4 for brokers that speak only 3.1.1
  std::chrono::seconds session_expiry{std::chrono::hours(24)};  // how long the broker keeps our queued requests
  // MQTT 5 Receive Maximum: requests the broker may have delivered to us and not seen acknowledged. A server that
  // dies can lose at most this many (the broker forgets them with a session that expires at once, or keeps them
  // for that client id otherwise): keep it small in a cluster (docs/scaling.md).
  std::uint16_t receive_maximum = 1000;
  std::chrono::seconds keep_alive{30};
  std::size_t max_payload_bytes = 16 * 1024 * 1024;
  std::string ca_file, cert_file, key_file;     // TLS (ssl:// brokers)
  unsigned upload_threads = 2;                  // uploads may run pip; other admin commands have their own thread
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(5)};  // for answers still being published
  // Answers produced while the broker is away wait in memory up to this many bytes; past it the oldest are
  // dropped (their records stay in the logs) and counted.
  std::size_t max_buffered_bytes = 64 * 1024 * 1024;
};

}  // namespace faas::mqtt
