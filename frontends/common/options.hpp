// options.hpp — the command-line options and environment variables both servers share (docs/configuration.md),
// and the logging they set up from them.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "faas/engine.hpp"

namespace faas::frontend {

struct CommonOptions {
  EngineConfig engine;
  std::string isolation = "process";  // the servers isolate by default (docs/isolation.md); the library does not
  std::string function_network = "host";
  double timeout_seconds = 30;
  std::string log_level = "info";
};

// Adds --data-dir, --store, --node-id, --isolation, --timeout, --max-concurrency, --max-queue, --log-level, --log-retention, --python,
// --max-workers, --memory-limit, --no-sandbox, --function-network (each also read from its environment variable) to `app`, writing into
// `options`.
void add_common_options(CLI::App& app, CommonOptions& options);

// Parses the command line and environment into the options added to `app`, then fills `options.engine`.
// Returns the exit status when the program should stop here (--help, or a bad option: CLI11 has said why).
// Throws Error(invalid_input) with a one-line reason for values CLI11 cannot check.
std::optional<int> parse_command_line(CLI::App& app, CommonOptions& options, int argc, char** argv);

// Names this server among those sharing the store "<host name>:<suffix>" (a port, a client id) unless --node-id
// named it.
void default_node_id(CommonOptions& options, const std::string& suffix);

// Logs to stderr through a buffer flushed every second (warnings and errors at once), so that a request's
// log line costs no system call. `program` prefixes every line.
void setup_logging(const std::string& program, const std::string& level);
// One warning line when functions run in-process (--no-sandbox is warned about by the engine).
void warn_if_unconfined(const EngineConfig& engine);

// Runs `main_body`, turning any exception into one clear line on stderr and exit status 1.
int run_main(const std::string& program, int (*main_body)(int, char**), int argc, char** argv);

}  // namespace faas::frontend
