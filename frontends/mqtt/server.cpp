// server.cpp — faas-mqtt's connection (persistent session, reconnects, status topic) and its request handling.
#include "server.hpp"

#include <atomic>
#include <cstdio>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <mqtt/async_client.h>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "base64.hpp"
#include "tcp_nodelay.hpp"

namespace faas::mqtt {
namespace {

using nlohmann::json;
namespace paho = ::mqtt;

// Where an answer goes besides its seed topic: an MQTT 5 request's Response Topic and Correlation Data.
struct ReplyTo {
  std::string topic;
  std::string correlation;
};

std::string sha256_hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : digest) {
    out.push_back(hex[byte >> 4]);
    out.push_back(hex[byte & 15]);
  }
  return out;
}

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

// The request's JSON object; empty payloads count as {}. Throws Error(invalid_input).
json parse_object(const std::string& payload) {
  if (payload.empty()) return json::object();
  json value = json::parse(payload, nullptr, false);
  if (value.is_discarded()) throw Error(ErrorCode::invalid_input, "the payload is not valid JSON");
  if (!value.is_object()) throw Error(ErrorCode::invalid_input, "the payload must be a JSON object");
  return value;
}

// The request_id a client sent, for error answers to requests that could not be parsed whole.
std::string request_id_in(const std::string& payload) {
  json value = json::parse(payload, nullptr, false);
  if (value.is_object()) {
    auto it = value.find("request_id");
    if (it != value.end() && it->is_string() && it->get_ref<const std::string&>().size() <= 256) return *it;
  }
  return make_request_id();
}

}  // namespace

struct Server::Impl {
  Impl(Engine& engine, const MqttConfig& config)
      : engine(engine),
        config(config),
        client(config.broker, config.client_id,
               paho::create_options(config.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1, 100000), nullptr),
        uploads(config.upload_threads),
        admin(1),
        invoke_prefix(config.base_topic + "/invoke/"),
        admin_prefix(config.base_topic + "/admin/"),
        status_topic(config.response_topic + "/server/" + config.client_id),
        broker_port(port_of(config.broker)) {
    invoke_filter = config.base_topic + "/invoke/+";
    if (!config.shared_group.empty()) invoke_filter = "$share/" + config.shared_group + "/" + invoke_filter;
    admin_filter = config.base_topic + "/admin/#";

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
      spdlog::warn("lost the broker ({}); reconnecting", cause.empty() ? "no reason given" : cause);
    });
    client.set_message_callback([this](paho::const_message_ptr message) { on_message(*message); });
  }

  std::string status_payload(const char* state) const {
    return json{{"status", state}, {"client_id", config.client_id}, {"timestamp", now_text()}}.dump();
  }

  static std::string now_text() { return format_local_time(Invocation::Clock::now()); }

  // Runs after every successful connection; the first one is completed by connect() itself.
  void on_connected() {
    if (!initial_done.load()) return;
    spdlog::info("reconnected to {}", config.broker);
    after_connect(false);
  }

  void after_connect(bool wait) {
    if (broker_port > 0) set_tcp_nodelay_to_port(broker_port);
    // Subscribing again is harmless when the broker kept the session, and needed when it did not.
    auto invoke_token = client.subscribe(invoke_filter, 1);
    auto admin_token = client.subscribe(admin_filter, 1);
    client.publish(paho::make_message(status_topic, status_payload("online"), 1, true));
    if (wait) {
      invoke_token->wait();
      admin_token->wait();
    }
  }

  void on_message(const paho::message& message) {
    const std::string& topic = message.get_topic();
    const std::string& payload = message.get_payload_str();
    ReplyTo reply;
    if (config.mqtt_version == 5) {
      const auto& props = message.get_properties();
      if (props.contains(paho::property::RESPONSE_TOPIC)) {
        reply.topic = paho::get<std::string>(props, paho::property::RESPONSE_TOPIC);
      }
      if (props.contains(paho::property::CORRELATION_DATA)) {
        reply.correlation = paho::get<std::string>(props, paho::property::CORRELATION_DATA);
      }
    }
    if (!reply.topic.empty() && (reply.topic.rfind(invoke_prefix, 0) == 0 || reply.topic.rfind(admin_prefix, 0) == 0 ||
                                 reply.topic.find_first_of("+#") != std::string::npos)) {
      // Answering there would turn a record into a request to ourselves (say, faas/admin/delete/x).
      reply.topic.clear();
      return publish_error(topic, command_of(topic), request_id_in(payload),
                           "the Response Topic must be a topic name outside " + invoke_prefix + " and " +
                               admin_prefix, reply);
    }
    if (payload.size() > config.max_payload_bytes) {
      return publish_error(topic, command_of(topic), make_request_id(),
                           "the payload is larger than " + std::to_string(config.max_payload_bytes) + " bytes", reply);
    }
    if (topic.rfind(invoke_prefix, 0) == 0) return invoke(topic, topic.substr(invoke_prefix.size()), payload, reply);
    if (topic.rfind(admin_prefix, 0) == 0) {
      // An empty message on an upload topic is how a client clears a retained upload (docs/scaling.md); an upload
      // needs code anyway, so it is no command.
      if (payload.empty() && command_of(topic) == "upload") return;
      return administer(topic, payload, std::move(reply));
    }
    publish_error(topic, "", make_request_id(), "no such command", reply);
  }

  std::string command_of(const std::string& topic) const {
    if (topic.rfind(invoke_prefix, 0) == 0) return "invoke";
    if (topic.rfind(admin_prefix, 0) != 0) return "";
    auto rest = topic.substr(admin_prefix.size());
    return rest.substr(0, rest.find('/'));
  }

  void invoke(const std::string& topic, std::string name, const std::string& payload, ReplyTo reply) {
    InvokeRequest request;
    request.function = std::move(name);
    try {
      parse_invoke_body(payload, request);
    } catch (const Error& e) {
      return publish_error(topic, "invoke", request_id_in(payload), e.what(), reply);
    }
    if (request.request_id.empty()) request.request_id = make_request_id();
    std::string request_id = request.request_id;
    std::string answer_topic = reply.topic.empty() ? config.response_topic + "/invoke/" + request.function : reply.topic;
    engine.invoke_async(std::move(request),
                        [this, topic, answer_topic = std::move(answer_topic), request_id = std::move(request_id),
                         reply = std::move(reply)](Outcome<InvocationResult> outcome) {
                          if (!outcome.ok()) return publish_error(topic, "invoke", request_id, outcome.error().what(), reply);
                          publish(answer_topic, std::move(outcome.value().json), reply);
                        });
  }

  void administer(const std::string& topic, const std::string& payload, ReplyTo reply) {
    std::string rest = topic.substr(admin_prefix.size());
    auto slash = rest.find('/');
    std::string command = rest.substr(0, slash);
    std::string name = slash == std::string::npos ? "" : rest.substr(slash + 1);
    bool upload = command == "upload";
    if (stopping.load()) {
      return publish_error(topic, command, request_id_in(payload), "the server is shutting down", reply);
    }
    // Off Paho's thread: uploads may run pip for minutes, the rest reads the database.
    boost::asio::post(upload ? uploads : admin, [this, topic, payload, command = std::move(command),
                                                 name = std::move(name), reply = std::move(reply)] {
      std::string request_id = request_id_in(payload);
      try {
        json request = parse_object(payload);
        if (auto it = request.find("request_id"); it != request.end() && it->is_string()) request_id = *it;
        auto answer = run_admin(command, name, request, request_id);
        publish(reply.topic.empty() ? config.response_topic + "/admin/" + command + (name.empty() ? "" : "/" + name)
                                    : reply.topic,
                std::move(answer), reply);
      } catch (const Error& e) {
        publish_error(topic, command, request_id, e.what(), reply);
      } catch (const std::exception& e) {
        spdlog::error("{} failed: {}", topic, e.what());
        publish_error(topic, command, request_id, e.what(), reply);
      }
    });
  }

  // One admin command; returns the answer's JSON text. Throws Error.
  std::string run_admin(const std::string& command, const std::string& name, const json& request,
                        const std::string& request_id) {
    auto need_name = [&] {
      if (name.empty()) throw Error(ErrorCode::invalid_name, "the topic names no function: use " + command + "/{name}");
    };
    if (command == "upload") {
      need_name();
      auto text_field = [&](const char* key, bool required) -> std::optional<std::string> {
        auto it = request.find(key);
        if (it == request.end() || it->is_null()) {
          if (required) throw Error(ErrorCode::invalid_input, std::string("'") + key + "' is required");
          return std::nullopt;
        }
        if (!it->is_string()) throw Error(ErrorCode::invalid_input, std::string("'") + key + "' must be a string");
        auto bytes = frontend::decode_base64(it->get_ref<const std::string&>());
        if (!bytes) throw Error(ErrorCode::invalid_input, std::string("'") + key + "' is not valid base64");
        return bytes;
      };
      std::string code = *text_field("code_b64", true);
      auto requirements = text_field("req_b64", false);
      FunctionInfo info;
      if (auto same = unchanged(name, code, requirements)) {
        info = *same;  // a retained upload seen again at reconnect: nothing to rebuild
      } else {
        info = engine.upload(name, code, requirements);
      }
      return json{{"status", "ok"}, {"function", info.name}, {"version", info.version}, {"request_id", request_id}}
          .dump();
    }
    if (command == "list") {
      json names = json::array();
      for (const auto& info : engine.list()) names.push_back(info.name);
      return json{{"functions", names}, {"request_id", request_id}}.dump();
    }
    if (command == "status") {
      json status = engine.status();
      status["request_id"] = request_id;
      return status.dump();
    }
    if (command == "logs") {
      need_name();
      std::size_t limit = 1000;
      if (auto it = request.find("limit"); it != request.end()) {
        if (!it->is_number_integer() || it->get<long long>() < 0) {
          throw Error(ErrorCode::invalid_input, "limit must be a non-negative integer");
        }
        limit = it->get<std::size_t>();
      }
      auto records = join_json_array(engine.logs(name, limit));
      return R"({"function":)" + json(name).dump() + R"(,"request_id":)" + json(request_id).dump() +
             R"(,"logs":)" + records + "}";
    }
    if (command == "delete") {
      need_name();
      engine.remove(name);
      return json{{"status", "deleted"}, {"function", name}, {"request_id", request_id}}.dump();
    }
    throw Error(ErrorCode::invalid_input, "unknown command '" + command + "'");
  }

  // The current version when it already has this code and these requirements.
  std::optional<FunctionInfo> unchanged(const std::string& name, const std::string& code,
                                        const std::optional<std::string>& requirements) {
    try {
      auto info = engine.info(name);
      bool no_requirements = !requirements || requirements->find_first_not_of(" \t\r\n") == std::string::npos;
      if (info.code_sha256 == sha256_hex(code) && no_requirements && !info.has_requirements) return info;
    } catch (const Error&) {
    }
    return std::nullopt;
  }

  void publish(const std::string& topic, std::string payload, const ReplyTo& reply) {
    auto message = paho::make_message(topic, std::move(payload), 1, false);
    if (!reply.correlation.empty()) {
      message->set_properties({{paho::property::CORRELATION_DATA, reply.correlation}});
    }
    try {
      client.publish(message);
    } catch (const paho::exception& e) {
      spdlog::error("cannot publish to {}: {}", topic, e.what());
    }
  }

  // A request that could not be processed: always on the seed's error topic, and also on an MQTT 5 Response
  // Topic when the request named one, so that a requester waiting there hears of it.
  void publish_error(const std::string& topic, const std::string& command, const std::string& request_id,
                     const std::string& error, const ReplyTo& reply) {
    std::string payload =
        json{{"error", error}, {"topic", topic}, {"command", command}, {"request_id", request_id}}.dump();
    if (!reply.topic.empty()) publish(reply.topic, payload, reply);
    publish(config.response_topic + "/error", std::move(payload), ReplyTo{});
    spdlog::info("{}: {}", topic, error);
  }

  Engine& engine;
  const MqttConfig& config;
  paho::async_client client;
  paho::connect_options connect_options;
  boost::asio::thread_pool uploads;
  boost::asio::thread_pool admin;
  std::string invoke_prefix, admin_prefix, status_topic, invoke_filter, admin_filter;
  int broker_port;
  std::atomic<bool> initial_done{false};
  std::atomic<bool> stopping{false};
};

Server::Server(Engine& engine, const MqttConfig& config) {
  try {
    impl_ = std::make_unique<Impl>(engine, config);
  } catch (const paho::exception& e) {
    throw std::runtime_error("cannot use broker '" + config.broker + "': " + e.what());
  }
}

Server::~Server() {
  impl_->uploads.join();
  impl_->admin.join();
}

bool Server::connect(const std::function<bool()>& stop_requested) {
  auto& impl = *impl_;
  auto backoff = std::chrono::seconds(1);
  for (;;) {
    try {
      impl.client.connect(impl.connect_options)->wait();
      impl.after_connect(true);
      impl.initial_done = true;
      std::fprintf(stderr, "faas-mqtt: connected to %s\n", impl.config.broker.c_str());
      spdlog::info("subscribed to {} and {}; status on {}", impl.invoke_filter, impl.admin_filter, impl.status_topic);
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

void Server::stop_taking_requests() {
  // The subscriptions stay: they are the broker's queue of requests for our next start. Admin commands are
  // refused from now on, and those already running finish here.
  impl_->stopping = true;
  impl_->uploads.join();
  impl_->admin.join();
}

void Server::disconnect(std::chrono::milliseconds grace) {
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
