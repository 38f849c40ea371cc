// transport.cpp — the Paho client behind Transport: connect options, TLS, session, subscriptions and status.
#include "transport.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include <mqtt/async_client.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "faas/invocation.hpp"
#include "tcp_nodelay.hpp"

namespace faas::mqtt {
namespace {

namespace paho = ::mqtt;
using nlohmann::json;

int port_of(const std::string& uri) {
  auto colon = uri.rfind(':');
  auto scheme_end = uri.find("://");
  if (colon != std::string::npos && (scheme_end == std::string::npos || colon > scheme_end + 2)) {
    auto end = uri.find('/', colon);
    try {
      return std::stoi(uri.substr(colon + 1, end == std::string::npos ? std::string::npos : end - colon - 1));
    } catch (const std::exception&) {
      return -1;
    }
  }
  if (uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0) return 8883;
  if (uri.rfind("ws://", 0) == 0) return 80;
  if (uri.rfind("wss://", 0) == 0) return 443;
  return 1883;
}

// Paho does not send while disconnected: what it held would go out on reconnection before we could subscribe
// again. Its queue limit also counts messages waiting while connected, so it stays large.
paho::create_options paho_options(const MqttConfig& config) {
  paho::create_options options(config.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1);
  options.set_send_while_disconnected(false);
  options.set_max_buffered_messages(1'000'000);
  return options;
}

bool secure(const std::string& uri) {
  return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0 || uri.rfind("wss://", 0) == 0;
}

}  // namespace

struct Transport::Impl {
  Impl(const MqttConfig& config, std::vector<std::string> filters, Handler handler)
      : config(config),
        filters(std::move(filters)),
        handler(std::move(handler)),
        client(config.broker, config.client_id, paho_options(config), nullptr),
        listener(*this),
        status_topic(config.response_topic + "/server/" + config.client_id),
        broker_port(port_of(config.broker)) {
    auto builder = paho::connect_options_builder();
    builder.mqtt_version(config.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1)
        .keep_alive_interval(config.keep_alive)
        .connect_timeout(std::chrono::seconds(10))
        .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(30))
        .will(paho::will_options(status_topic, status_payload("offline"), 1, true));
    // A persistent session: the broker keeps our subscriptions and queues QoS 1 requests while we are away.
    if (config.mqtt_version == 5) {
      builder.clean_start(false);
    } else {
      builder.clean_session(false);
    }
    if (!config.username.empty()) builder.user_name(config.username);
    if (!config.password.empty()) builder.password(config.password);
    if (secure(config.broker)) {
      auto ssl = paho::ssl_options_builder();
      ssl.enable_server_cert_auth(true).verify(true);  // the certificate's chain and that it names the broker's host
      if (!config.ca_file.empty()) ssl.trust_store(config.ca_file);
      if (!config.cert_file.empty()) ssl.key_store(config.cert_file);
      if (!config.key_file.empty()) ssl.private_key(config.key_file);
      ssl.error_handler([](const std::string& message) { spdlog::error("TLS: {}", message); });
      builder.ssl(ssl.finalize());
    }
    connect_options = builder.finalize();
    if (config.mqtt_version == 5) {
      // Set on the final object: Paho C++ 1.2 keeps a pointer to the builder's properties through the
      // assignment above, which dangles (valgrind shows it; the connect then crashes).
      paho::properties session;
      session.add({paho::property::SESSION_EXPIRY_INTERVAL, static_cast<int>(config.session_expiry.count())});
      connect_options.set_properties(session);
    }

    client.set_connected_handler([this](const std::string&) { on_connected(); });
    client.set_connection_lost_handler([this](const std::string& cause) {
      {
        std::lock_guard lock(mutex);
        ready = false;
      }
      spdlog::warn("lost the broker ({}); reconnecting", cause.empty() ? "no reason given" : cause);
    });
    client.set_message_callback([this](paho::const_message_ptr message) { on_message(*message); });
  }

  std::string status_payload(const char* state) const {
    return json{{"status", state},
                {"client_id", config.client_id},
                {"timestamp", format_local_time(Invocation::Clock::now())}}
        .dump();
  }

  // When the broker has acknowledged our subscriptions, the rest may follow.
  struct SubscribeListener : paho::iaction_listener {
    explicit SubscribeListener(Impl& impl) : impl(impl) {}
    void on_success(const paho::token&) override { impl.subscribed(); }
    void on_failure(const paho::token&) override {
      spdlog::error("the broker refused our subscriptions; trying again in a second");
      std::thread([&impl = impl] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (impl.client.is_connected()) impl.subscribe();
      }).detach();
    }
    Impl& impl;
  };

  // Runs after every successful connection, on Paho's thread, which must not wait for tokens.
  void on_connected() {
    if (initial_done.load()) spdlog::info("reconnected to {}", config.broker);
    if (broker_port > 0) set_tcp_nodelay_to_port(broker_port);
    // Subscribing again is harmless when the broker kept the session, and needed when it did not.
    subscribe();
  }

  void subscribe() {
    auto topics = paho::string_collection::create(filters);
    client.subscribe(topics, paho::iasync_client::qos_collection(filters.size(), 1), nullptr, listener);
  }

  void subscribed() {
    send(make(status_topic, status_payload("online"), {}, true));
    // Then the answers that waited, oldest first; answers made meanwhile queue behind them.
    for (;;) {
      std::deque<Waiting> batch;
      {
        std::lock_guard lock(mutex);
        if (waiting.empty()) {
          ready = true;
          subscribed_cv.notify_all();
          return;
        }
        batch.swap(waiting);
        waiting_bytes = 0;
      }
      while (!batch.empty()) {
        auto& next = batch.front();
        if (!send(make(next.topic, next.payload, next.correlation, false))) {
          std::lock_guard lock(mutex);  // lost the broker again: keep them for the next connection
          for (auto& rest : waiting) batch.push_back(std::move(rest));
          waiting.swap(batch);
          waiting_bytes = 0;
          for (const auto& item : waiting) waiting_bytes += item.size();
          return;
        }
        batch.pop_front();
      }
    }
  }

  static paho::message_ptr make(const std::string& topic, std::string payload, const std::string& correlation,
                                 bool retained) {
    auto message = paho::make_message(topic, std::move(payload), 1, retained);
    if (!correlation.empty()) message->set_properties({{paho::property::CORRELATION_DATA, correlation}});
    return message;
  }

  // Hands one message to Paho; false when the connection is gone.
  bool send(const paho::message_ptr& message) {
    try {
      client.publish(message);
      return true;
    } catch (const paho::exception& e) {
      if (client.is_connected()) spdlog::error("cannot publish to {}: {}", message->get_topic(), e.what());
      return false;
    }
  }

  struct Waiting {
    std::string topic, payload, correlation;
    std::size_t size() const { return topic.size() + payload.size() + correlation.size(); }
  };

  // Keeps an answer for the next connection, within max_buffered_bytes. mutex held.
  void keep(Waiting item) {
    waiting_bytes += item.size();
    waiting.push_back(std::move(item));
    while (waiting_bytes > config.max_buffered_bytes && waiting.size() > 1) {
      waiting_bytes -= waiting.front().size();
      waiting.pop_front();
      if (dropped++ % 1000 == 0) {
        spdlog::warn("the broker is away and {} bytes of answers wait: dropping the oldest ({} so far; their "
                     "records are in the logs)", config.max_buffered_bytes, dropped);
      }
    }
  }

  void on_message(const paho::message& message) {
    Message out;
    out.topic = message.get_topic();
    out.payload = message.get_payload_str();
    out.retained = message.is_retained();
    if (config.mqtt_version == 5) {
      const auto& props = message.get_properties();
      if (props.contains(paho::property::RESPONSE_TOPIC)) {
        out.reply.topic = paho::get<std::string>(props, paho::property::RESPONSE_TOPIC);
      }
      if (props.contains(paho::property::CORRELATION_DATA)) {
        out.reply.correlation = paho::get<std::string>(props, paho::property::CORRELATION_DATA);
      }
    }
    handler(std::move(out));
  }

  const MqttConfig& config;
  std::vector<std::string> filters;
  Handler handler;
  paho::async_client client;
  SubscribeListener listener;
  paho::connect_options connect_options;

  std::mutex mutex;
  std::condition_variable subscribed_cv;
  bool ready = false;  // connected and subscribed: answers go straight to Paho
  std::deque<Waiting> waiting;
  std::size_t waiting_bytes = 0;
  std::uint64_t dropped = 0;
  std::string status_topic;
  int broker_port;
  std::atomic<bool> initial_done{false};
};

Transport::Transport(const MqttConfig& config, std::vector<std::string> filters, Handler handler) {
  try {
    impl_ = std::make_unique<Impl>(config, std::move(filters), std::move(handler));
  } catch (const paho::exception& e) {
    throw std::runtime_error("cannot use broker '" + config.broker + "': " + e.what());
  }
}

Transport::~Transport() = default;

bool Transport::connect(const std::function<bool()>& stop_requested) {
  auto& impl = *impl_;
  auto backoff = std::chrono::seconds(1);
  for (;;) {
    try {
      impl.client.connect(impl.connect_options)->wait();
      {
        // The connected handler subscribes; the server is up once the broker has acknowledged that.
        std::unique_lock lock(impl.mutex);
        if (!impl.subscribed_cv.wait_for(lock, std::chrono::seconds(10), [&] { return impl.ready; })) {
          throw paho::exception(MQTTASYNC_FAILURE, "the broker did not acknowledge our subscriptions");
        }
      }
      impl.initial_done = true;
      std::fprintf(stderr, "faas-mqtt: connected to %s\n", impl.config.broker.c_str());
      std::string listed;
      for (const auto& filter : impl.filters) listed += (listed.empty() ? "" : ", ") + filter;
      spdlog::info("subscribed to {}; status on {}", listed, impl.status_topic);
      return true;
    } catch (const paho::exception& e) {
      spdlog::warn("cannot connect to {}: {}; retrying in {} s", impl.config.broker, e.what(), backoff.count());
    }
    for (auto waited = std::chrono::milliseconds(0); waited < backoff; waited += std::chrono::milliseconds(100)) {
      if (stop_requested()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    backoff = std::min(backoff * 2, std::chrono::seconds(30));
  }
}

void Transport::publish(const std::string& topic, std::string payload, const ReplyTo& reply) {
  auto& impl = *impl_;
  {
    std::lock_guard lock(impl.mutex);
    if (!impl.ready) return impl.keep({topic, std::move(payload), reply.correlation});
  }
  auto message = impl.make(topic, std::move(payload), reply.correlation, false);
  if (!impl.send(message)) {  // the broker went away between the check and the send
    std::lock_guard lock(impl.mutex);
    impl.keep({topic, message->get_payload_str(), reply.correlation});
  }
}

void Transport::disconnect(std::chrono::milliseconds grace) {
  auto& impl = *impl_;
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto waiting = [&] {
    std::lock_guard lock(impl.mutex);
    return impl.waiting.size();
  };
  while ((!impl.client.get_pending_delivery_tokens().empty() || waiting() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (auto left = impl.client.get_pending_delivery_tokens().size() + waiting()) {
    spdlog::warn("{} answers not acknowledged by the broker at exit", left);
  }
  try {
    if (impl.client.is_connected()) {
      impl.client.publish(paho::make_message(impl.status_topic, impl.status_payload("offline"), 1, true))
          ->wait_for(std::chrono::seconds(2));
      impl.client.disconnect(std::chrono::seconds(2))->wait();
    }
  } catch (const paho::exception& e) {
    spdlog::warn("disconnecting: {}", e.what());
  }
}

}  // namespace faas::mqtt
