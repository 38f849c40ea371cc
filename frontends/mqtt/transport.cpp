// transport.cpp — the Paho client behind Transport: connect options, TLS, session, subscriptions and status.
#include "transport.hpp"

#include <atomic>
#include <cstdio>
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

bool secure(const std::string& uri) {
  return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0 || uri.rfind("wss://", 0) == 0;
}

}  // namespace

struct Transport::Impl {
  Impl(const MqttConfig& config, std::vector<std::string> filters, Handler handler)
      : config(config),
        filters(std::move(filters)),
        handler(std::move(handler)),
        client(config.broker, config.client_id,
               paho::create_options(config.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1, 100000), nullptr),
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
    client.set_connection_lost_handler([](const std::string& cause) {
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

  // Runs after every successful connection; the first one is completed by connect() itself.
  void on_connected() {
    if (!initial_done.load()) return;
    spdlog::info("reconnected to {}", config.broker);
    after_connect(false);
  }

  void after_connect(bool wait) {
    if (broker_port > 0) set_tcp_nodelay_to_port(broker_port);
    // Subscribing again is harmless when the broker kept the session, and needed when it did not.
    std::vector<paho::token_ptr> tokens;
    for (const auto& filter : filters) tokens.push_back(client.subscribe(filter, 1));
    client.publish(paho::make_message(status_topic, status_payload("online"), 1, true));
    if (wait) {
      for (auto& token : tokens) token->wait();
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
  paho::connect_options connect_options;
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
      impl.after_connect(true);
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
  auto message = paho::make_message(topic, std::move(payload), 1, false);
  if (!reply.correlation.empty()) {
    message->set_properties({{paho::property::CORRELATION_DATA, reply.correlation}});
  }
  try {
    impl_->client.publish(message);
  } catch (const paho::exception& e) {
    spdlog::error("cannot publish to {}: {}", topic, e.what());
  }
}

void Transport::disconnect(std::chrono::milliseconds grace) {
  auto& impl = *impl_;
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (!impl.client.get_pending_delivery_tokens().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (auto left = impl.client.get_pending_delivery_tokens().size()) {
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
