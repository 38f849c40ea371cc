// faas-coap: command line and environment (docs/configuration.md) → CoapConfig + EngineConfig, then serve until a
// signal.

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "auth.hpp"
#include "options.hpp"
#include "server.hpp"
#include "signals.hpp"

namespace {

using namespace faas;

int serve(int argc, char** argv) {
  // First: every thread started from here on inherits the blocked signals.
  frontend::StopSignal stop;

  coap::CoapConfig config;
  frontend::CommonOptions common;
  std::string key_file;
  double max_body_kib = 1024;

  CLI::App app{"faas-coap: invoke and manage Python functions over CoAP"};
  app.add_option("--host", config.host, "Address to listen on")->envname("FAAS_COAP_HOST")->capture_default_str();
  app.add_option("--port", config.port, "UDP port of coap:// (0: any free port)")
      ->envname("FAAS_COAP_PORT")
      ->capture_default_str();
  app.add_option("--dtls-port", config.dtls_port, "UDP port of coaps://, DTLS (0: any free port)")
      ->envname("FAAS_COAP_DTLS_PORT")
      ->capture_default_str();
  app.add_flag("--public-invoke", config.public_invoke, "Let POST /function/* through plain coap://")
      ->envname("FAAS_PUBLIC_INVOKE");
  app.add_option("--psk-identity", config.psk_identity, "The admin key's identity (default: the admin's user)")
      ->envname("FAAS_COAP_PSK_IDENTITY");
  auto* key = app.add_option("--psk-key", config.psk_key, "The admin's pre-shared key (default: the admin's password)")
                  ->envname("FAAS_COAP_PSK_KEY");
  app.add_option("--psk-key-file", key_file, "A file holding the pre-shared key (first line)")
      ->envname("FAAS_COAP_PSK_KEY_FILE")
      ->excludes(key);
  app.add_option("--max-body-kib", max_body_kib, "Largest request body, in KiB")
      ->envname("FAAS_COAP_MAX_BODY_KIB")
      ->check(CLI::Range(1.0, 65536.0))
      ->capture_default_str();
  frontend::add_common_options(app, common);
  if (auto status = frontend::parse_command_line(app, common, argc, argv)) return *status;
  config.max_body_bytes = static_cast<std::size_t>(max_body_kib * 1024);
  if (!key_file.empty()) {
    std::ifstream in(key_file);
    if (!std::getline(in, config.psk_key) || config.psk_key.empty()) {
      throw std::runtime_error("cannot read a key from " + key_file);
    }
  }
  frontend::setup_logging("faas-coap", common.log_level);
  frontend::warn_if_unconfined(common.engine);
  if (config.psk_identity.empty()) {
    const char* user = std::getenv("FAAS_HTTP_USER");
    config.psk_identity = user != nullptr && *user != '\0' ? user : "admin";
  }
  if (config.psk_key.empty()) {
    config.psk_key = frontend::admin_password("faas-coap", config.psk_identity, common.engine.data_dir);
  }

  frontend::default_node_id(common, std::to_string(config.port));
  Engine engine(common.engine);
  {
    coap::Server server(engine, config);
    spdlog::info("isolation {}, data dir {}", to_string(common.engine.isolation), common.engine.data_dir.string());
    std::fprintf(stderr, "faas-coap: listening on %s (coap), %s (coaps)\n", server.udp_address().c_str(),
                 server.dtls_address().c_str());
    server.run([&] { return stop.requested(); });
    // Lets queued and running invocations finish (each bounded by its timeout) while their answers still go out.
    std::atomic<bool> drained{false};
    std::thread drain([&] {
      engine.drain();
      drained = true;
    });
    server.run([&] { return drained.load(); });
    drain.join();
    server.run([deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200)] {
      return std::chrono::steady_clock::now() > deadline;  // the last answers leave
    });
  }
  engine.shutdown();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return faas::frontend::run_main("faas-coap", serve, argc, argv); }
