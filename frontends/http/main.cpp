// faas-http: command line and environment (docs/configuration.md) → HttpConfig + EngineConfig, then serve until a
// signal.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "api.hpp"
#include "auth.hpp"
#include "callbacks.hpp"
#include "options.hpp"
#include "origins.hpp"
#include "server.hpp"

namespace {

using namespace faas;

// Many keep-alive clients need many descriptors; the soft limit is often 1024.
void raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int serve(int argc, char** argv) {
  http::HttpConfig config;
  frontend::CommonOptions common;
  double read_timeout_seconds = 30;
  double first_request_seconds = 10;
  double upload_mib = 16;
  std::vector<std::string> public_origins;

  CLI::App app{"faas-http: invoke and manage Python functions over HTTP"};
  app.add_option("--host", config.host, "Address to listen on")->envname("FAAS_HTTP_HOST")->capture_default_str();
  app.add_option("--port", config.port, "Port to listen on (0: any free port)")
      ->envname("FAAS_HTTP_PORT")
      ->capture_default_str();
  app.add_flag("--public-invoke", config.public_invoke, "Let /function/* through without credentials")
      ->envname("FAAS_PUBLIC_INVOKE");
  app.add_option("--user", config.user, "HTTP Basic user")->envname("FAAS_HTTP_USER")->capture_default_str();
  app.add_option("--io-threads", config.io_threads, "Threads serving sockets")
      ->envname("FAAS_HTTP_IO_THREADS")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  app.add_option("--max-upload-mib", upload_mib, "Largest upload body, in MiB")
      ->envname("FAAS_MAX_UPLOAD_MIB")
      ->check(CLI::Range(0.001, 1024.0))
      ->capture_default_str();
  app.add_option("--max-connections", config.max_connections, "Open connections at once")
      ->envname("FAAS_HTTP_MAX_CONNECTIONS")
      ->check(CLI::Range(1ul, 1000000ul))
      ->capture_default_str();
  app.add_option("--max-connections-per-address", config.max_connections_per_address,
                 "Open connections from one client address")
      ->envname("FAAS_HTTP_MAX_CONNECTIONS_PER_ADDRESS")
      ->check(CLI::Range(1ul, 1000000ul))
      ->capture_default_str();
  app.add_option("--read-timeout", read_timeout_seconds, "Seconds a client has to send a whole request")
      ->envname("FAAS_HTTP_READ_TIMEOUT")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--first-request-timeout", first_request_seconds,
                 "Seconds a new connection has to send its first whole request")
      ->envname("FAAS_HTTP_FIRST_REQUEST_TIMEOUT")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--public-origin", public_origins,
                 "An origin (https://faas.example.com) whose pages may send writes, beside this server's own")
      ->envname("FAAS_HTTP_PUBLIC_ORIGIN")
      ->delimiter(',');
  frontend::add_common_options(app, common);
  if (auto status = frontend::parse_command_line(app, common, argc, argv)) return *status;
  config.max_upload_bytes = static_cast<std::size_t>(upload_mib * 1024 * 1024);
  config.read_timeout = std::chrono::milliseconds(static_cast<long>(read_timeout_seconds * 1000));
  config.first_request_timeout = std::chrono::milliseconds(static_cast<long>(first_request_seconds * 1000));
  for (const auto& origin : public_origins) {
    auto normalized = http::normalize_origin(origin);
    if (normalized.empty()) throw std::runtime_error("--public-origin '" + origin + "' is not scheme://host[:port]");
    config.allowed_origins.push_back(normalized);
  }
  frontend::setup_logging("faas-http", common.log_level);
  frontend::warn_if_unconfined(common.engine);
  raise_descriptor_limit();

  config.password = frontend::admin_password("faas-http", config.user, common.engine.data_dir);

  frontend::default_node_id(common, std::to_string(config.port));
  Engine engine(common.engine);
  http::Metrics metrics;
  http::Server server(config, metrics);
  auto bound = server.local_address();  // "HOST:PORT", the port chosen when --port 0
  auto port = static_cast<unsigned short>(std::stoi(bound.substr(bound.rfind(':') + 1)));
  for (auto& origin : http::local_origins(config.host, port)) config.allowed_origins.push_back(std::move(origin));
  http::Api api(engine, config, metrics, server.blocking_runner());
  http::Callbacks callbacks;
  // Asynchronous calls left from before run now, and each one's last record goes to its callback URL, if any.
  engine.serve_async("http", [&metrics, &callbacks](const AsyncCall& call, const std::string& record) {
    metrics.record_async(call.attempt, call.dead);
    if (!call.options.reply.empty()) callbacks.deliver(call.options.reply, record);
  });
  server.start(api);
  spdlog::info("isolation {}, data dir {}", to_string(common.engine.isolation), common.engine.data_dir.string());
  std::fprintf(stderr, "faas-http: listening on %s\n", server.local_address().c_str());

  server.wait_for_signal();
  api.begin_shutdown();
  server.stop_accepting();
  engine.shutdown();  // lets queued and running invocations finish, each bounded by its timeout
  if (std::size_t left = server.drain(config.shutdown_grace)) spdlog::warn("{} answers not written at exit", left);
  server.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return faas::frontend::run_main("faas-http", serve, argc, argv); }
