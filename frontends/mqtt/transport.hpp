// transport.hpp — faas-mqtt's connection to the broker, our own MQTT 3.1.1/5 client on Boost.Asio (wire.hpp says
// why): the persistent session, TLS, reconnects with backoff, the subscriptions, the status topic with its last
// will, and publishing. It knows nothing of functions: each arriving message goes to the handler (api.hpp), and a
// QoS 1 request is acknowledged to the broker only when the handler says so, in the order they arrived.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"

namespace faas::mqtt {

// Where an answer goes besides its usual topic: an MQTT 5 request's Response Topic and Correlation Data.
struct ReplyTo {
  std::string topic;
  std::string correlation;
};

struct Message {
  std::string topic;
  std::string payload;
  ReplyTo reply;
  std::string traceparent;  // an MQTT 5 request's User Property "traceparent"
  bool retained = false;  // delivered from the broker's store of retained messages
  bool too_large = false; // longer than max_payload_bytes: `payload` is empty, the rest was skipped
};

// Acknowledges one message to the broker (its PUBACK goes out once every earlier message is acknowledged too).
// Call it exactly once, from any thread; a no-op for QoS 0 messages and after the connection it came on is gone
// (the broker sends the message again then).
using Ack = std::function<void()>;

class Transport {
 public:
  // Called on the transport's thread for every message; it must not block.
  using Handler = std::function<void(Message, Ack)>;

  // `filters`: the topic filters to subscribe to (QoS 1), on every connection. Throws std::runtime_error on a
  // bad broker URI.
  Transport(const MqttConfig& config, std::vector<std::string> filters, Handler handler);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Connects (retrying with backoff until it succeeds or stop_requested() turns true), subscribes, and from then
  // on reconnects and resubscribes on its own. Returns false if stopped before connecting. After every connection
  // the subscriptions come first, acknowledged by the broker, and only then the status and the answers buffered
  // meanwhile: a broker that restarted without our session must know where requests go before anything else.
  bool connect(const std::function<bool()>& stop_requested);
  // Publishes at QoS 1, not retained, with the reply's correlation data when it has some. Never blocks. While the
  // broker is away (or until the subscriptions are back) answers wait in order, up to max_buffered_bytes (the
  // oldest are dropped past it). `delivered` runs on the transport's thread once the broker acknowledged it.
  void publish(const std::string& topic, std::string payload, const ReplyTo& reply = {},
               std::function<void()> delivered = {});
  // Waits until every publication is handed to the broker, at most `grace`; publishes the offline status;
  // disconnects.
  void disconnect(std::chrono::milliseconds grace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::mqtt
