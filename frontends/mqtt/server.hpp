// server.hpp — faas-mqtt: the topics of CONTRACT §4 over the engine, on the Paho C++ asynchronous client.
//
// Paho's callback thread never runs Python or pip: invocations go to Engine::invoke_async and are published from
// its completion; uploads run on their own threads and the other admin commands on another, so a slow pip
// install holds up neither. Paho stays inside server.cpp.
#pragma once

#include <memory>

#include "config.hpp"
#include "faas/engine.hpp"

namespace faas::mqtt {

class Server {
 public:
  Server(Engine& engine, const MqttConfig& config);  // throws std::runtime_error on a bad broker URI
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Connects (retrying with backoff until it succeeds or stop_requested() turns true), subscribes, and from then
  // on reconnects and resubscribes on its own. Returns false if stopped before connecting.
  bool connect(const std::function<bool()>& stop_requested);

  // Unsubscribes so that no new request arrives; requests already taken keep going.
  void stop_taking_requests();
  // Waits until every answer is handed to the broker, at most `grace`; publishes the offline status; disconnects.
  void disconnect(std::chrono::milliseconds grace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::mqtt
