// faas-mqtt: command line and environment (docs/configuration.md) → MqttConfig + EngineConfig, then serve until a
// signal.
#include <unistd.h>

#include <atomic>
#include <memory>
#include <cstdlib>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "options.hpp"
#include "signals.hpp"
#include "api.hpp"
#include "transport.hpp"

namespace {

using namespace faas;

std::string default_client_id() {
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  return std::string("faas-mqtt-") + host;
}

int serve(int argc, char** argv) {
  // First: every thread started from here on (logging, engine, transport) inherits the blocked signals.
  frontend::StopSignal stop;

  mqtt::MqttConfig config;
  frontend::CommonOptions common;
  std::string mqtt_version = "5";
  double max_payload_mib = 16;

  CLI::App app{"faas-mqtt: invoke and manage Python functions over MQTT"};
  app.add_option("--broker", config.broker, "Broker URI: tcp://HOST:PORT or ssl://HOST:PORT")
      ->envname("FAAS_MQTT_BROKER")
      ->capture_default_str();
  app.add_option("--client-id", config.client_id, "MQTT client id; keep it stable, the broker keeps our session by it")
      ->envname("FAAS_MQTT_CLIENT_ID");
  app.add_option("--base-topic", config.base_topic, "Request topics start with this")
      ->envname("FAAS_MQTT_BASE_TOPIC")
      ->capture_default_str();
  app.add_option("--response-topic", config.response_topic, "Answer topics start with this")
      ->envname("FAAS_MQTT_RESPONSE_TOPIC")
      ->capture_default_str();
  app.add_option("--username", config.username, "Broker user")->envname("MQTT_USERNAME");
  app.add_option("--password", config.password, "Broker password")->envname("MQTT_PASSWORD");
  app.add_option("--shared-group", config.shared_group, "Share invocations with the servers of this group")
      ->envname("FAAS_MQTT_SHARED_GROUP");
  app.add_option("--mqtt-version", mqtt_version, "5, or 3.1.1 for brokers without MQTT 5")
      ->envname("FAAS_MQTT_VERSION")
      ->check(CLI::IsMember({"5", "3.1.1"}))
      ->capture_default_str();
  app.add_option("--session-expiry", config.session_expiry, "Seconds the broker keeps our session and requests")
      ->envname("FAAS_MQTT_SESSION_EXPIRY");
  app.add_option("--receive-maximum", config.receive_maximum,
                 "MQTT 5: requests the broker may have delivered and not seen acknowledged (what a crash can lose)")
      ->envname("FAAS_MQTT_RECEIVE_MAXIMUM")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--max-payload-mib", max_payload_mib, "Largest request payload, in MiB")
      ->envname("FAAS_MQTT_MAX_PAYLOAD_MIB")
      ->check(CLI::Range(0.001, 256.0))
      ->capture_default_str();
  app.add_option("--ca-file", config.ca_file, "TLS: CA certificates to trust")->envname("FAAS_MQTT_CA_FILE");
  app.add_option("--cert-file", config.cert_file, "TLS: client certificate")->envname("FAAS_MQTT_CERT_FILE");
  app.add_option("--key-file", config.key_file, "TLS: client private key")->envname("FAAS_MQTT_KEY_FILE");
  frontend::add_common_options(app, common);
  if (auto status = frontend::parse_command_line(app, common, argc, argv)) return *status;
  if (config.client_id.empty()) config.client_id = default_client_id();
  config.mqtt_version = mqtt_version == "5" ? 5 : 4;
  config.max_payload_bytes = static_cast<std::size_t>(max_payload_mib * 1024 * 1024);
  if (config.base_topic.empty() || config.response_topic.empty() ||
      config.base_topic.find_first_of("+#") != std::string::npos ||
      config.response_topic.find_first_of("+#") != std::string::npos) {
    throw std::runtime_error("--base-topic and --response-topic must be non-empty topics without wildcards");
  }
  for (const char* requests : {"/invoke", "/admin"}) {
    if ((config.response_topic + "/").rfind(config.base_topic + requests + "/", 0) == 0) {
      throw std::runtime_error("--response-topic must not lie under the request topics " + config.base_topic +
                               requests + "/");
    }
  }
  frontend::setup_logging("faas-mqtt", common.log_level);
  frontend::warn_if_unconfined(common.engine);

  if (common.engine.node_id.empty()) common.engine.node_id = config.client_id;
  Engine engine(common.engine);
  std::unique_ptr<mqtt::Transport> transport;
  mqtt::Api api(engine, config, [&transport](const std::string& topic, std::string payload,
                                             const mqtt::ReplyTo& reply, std::function<void()> delivered) {
    transport->publish(topic, std::move(payload), reply, std::move(delivered));
  });
  transport = std::make_unique<mqtt::Transport>(
      config, api.filters(), [&api](mqtt::Message message, mqtt::Ack ack) { api.handle(std::move(message), ack); });
  spdlog::info("isolation {}, data dir {}, client id {}", to_string(common.engine.isolation),
               common.engine.data_dir.string(), config.client_id);
  api.resume();  // answers wait for the subscriptions, like every answer made while disconnected
  if (transport->connect([&] { return stop.requested(); })) {
    while (!stop.requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The subscriptions stay: they are the broker's queue of requests for our next start.
  api.stop_taking_requests();
  engine.drain();  // lets queued and running invocations finish, each bounded by its timeout; answers go out
  transport->disconnect(config.shutdown_grace);  // the broker's acknowledgements settle their inbox entries
  engine.shutdown();  // commits the last settlements; a call that outlived the drain publishes into the void
  transport.reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return faas::frontend::run_main("faas-mqtt", serve, argc, argv); }
