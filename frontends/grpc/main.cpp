// faas-grpc: command line and environment (docs/configuration.md) → GrpcConfig + EngineConfig, then serve until a
// signal.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "auth.hpp"
#include "options.hpp"
#include "service.hpp"

namespace {

using namespace faas;

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) throw std::runtime_error(std::string("cannot read the ") + what + " " + path);
  return text.str();
}

std::shared_ptr<grpc::ServerCredentials> credentials(const grpc_frontend::GrpcConfig& config) {
  if (config.tls_cert.empty() && config.tls_key.empty()) return grpc::InsecureServerCredentials();
  if (config.tls_cert.empty() || config.tls_key.empty()) {
    throw std::runtime_error("TLS needs both --tls-cert and --tls-key");
  }
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({read_file(config.tls_key, "TLS key"), read_file(config.tls_cert, "TLS certificate")});
  return grpc::SslServerCredentials(options);
}

int serve(int argc, char** argv) {
  // Signals are taken by sigwait below; every thread started from here on inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  grpc_frontend::GrpcConfig config;
  frontend::CommonOptions common;
  double max_message_mib = 16;

  CLI::App app{"faas-grpc: invoke and manage Python functions over gRPC (service libfaas.v1.Faas)"};
  app.add_option("--host", config.host, "Address to listen on")->envname("FAAS_GRPC_HOST")->capture_default_str();
  app.add_option("--port", config.port, "Port to listen on (0: any free port)")
      ->envname("FAAS_GRPC_PORT")
      ->capture_default_str();
  app.add_flag("--public-invoke", config.public_invoke, "Let Invoke and InvokeStream through without credentials")
      ->envname("FAAS_PUBLIC_INVOKE");
  app.add_option("--user", config.user, "The admin's user (the same as faas-http's)")
      ->envname("FAAS_HTTP_USER")
      ->capture_default_str();
  app.add_option("--tls-cert", config.tls_cert, "TLS: the server's certificate chain (PEM)")
      ->envname("FAAS_GRPC_TLS_CERT");
  app.add_option("--tls-key", config.tls_key, "TLS: the server's private key (PEM)")->envname("FAAS_GRPC_TLS_KEY");
  app.add_option("--max-message-mib", max_message_mib, "Largest request message (an upload's code), in MiB")
      ->envname("FAAS_GRPC_MAX_MESSAGE_MIB")
      ->check(CLI::Range(0.001, 1024.0))
      ->capture_default_str();
  frontend::add_common_options(app, common);
  if (auto status = frontend::parse_command_line(app, common, argc, argv)) return *status;
  config.max_message_bytes = static_cast<std::size_t>(max_message_mib * 1024 * 1024);
  auto server_credentials = credentials(config);  // bad TLS files: one line and exit 1, before anything starts
  frontend::setup_logging("faas-grpc", common.log_level);
  // gRPC's own messages (a port in use prints a page of them) go to our log at debug level: its failures reach
  // us as return values and statuses, which say what happened in one line.
  gpr_set_log_function([](gpr_log_func_args* args) { spdlog::debug("grpc: {}", args->message); });
  frontend::warn_if_unconfined(common.engine);
  config.password = frontend::admin_password("faas-grpc", config.user, common.engine.data_dir);
  if (config.tls_cert.empty() && config.host != "127.0.0.1" && config.host != "::1" && config.host != "localhost") {
    spdlog::warn("listening on {} without TLS: credentials and arguments cross the network in the clear", config.host);
  }

  frontend::default_node_id(common, std::to_string(config.port));
  Engine engine(common.engine);
  grpc_frontend::Service service(engine, config);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string address = (config.host.find(':') != std::string::npos ? "[" + config.host + "]" : config.host) +
                              ":" + std::to_string(config.port);
  builder.AddListeningPort(address, server_credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) throw std::runtime_error("cannot listen on " + address);
  spdlog::info("isolation {}, data dir {}", to_string(common.engine.isolation), common.engine.data_dir.string());
  std::fprintf(stderr, "faas-grpc: listening on %s:%d\n", config.host.c_str(), port);

  int caught = 0;
  sigwait(&signals, &caught);
  spdlog::info("caught signal {}; shutting down", caught);
  server->GetHealthCheckService()->Shutdown();  // health answers NOT_SERVING: balancers stop sending work
  // New calls are refused; those running get the grace to finish (then are cancelled: their records still commit).
  server->Shutdown(std::chrono::system_clock::now() + config.shutdown_grace);
  engine.shutdown();
  server->Wait();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return faas::frontend::run_main("faas-grpc", serve, argc, argv); }
