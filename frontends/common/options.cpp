// options.cpp — shared command line, environment and logging of the servers.
#include "options.hpp"

#include <cmath>
#include <cstdio>
#include <exception>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace faas::frontend {

void add_common_options(CLI::App& app, CommonOptions& options) {
  options.engine.data_dir = "./faas-data";
  app.add_option("--data-dir", options.engine.data_dir, "Where functions, environments and records live")
      ->envname("FAAS_DATA_DIR")
      ->capture_default_str();
  app.add_option("--isolation", options.isolation, "Where functions run: inprocess or process")
      ->envname("FAAS_ISOLATION")
      ->check(CLI::IsMember({"inprocess", "process"}))
      ->capture_default_str();
  app.add_option("--timeout", options.timeout_seconds, "Seconds an invocation may run")
      ->envname("FAAS_TIMEOUT")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_option("--max-concurrency", options.engine.max_concurrency, "Invocations running at once")
      ->envname("FAAS_MAX_CONCURRENCY")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "trace, debug, info, warning, error or off")
      ->envname("FAAS_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--python", options.engine.python, "Python 3.11 interpreter that builds virtualenvs")
      ->envname("FAAS_PYTHON")
      ->capture_default_str();
}

void finish_common_options(CommonOptions& options) {
  options.engine.isolation = parse_isolation(options.isolation);
  options.engine.timeout = std::chrono::milliseconds(std::llround(options.timeout_seconds * 1000));
}

void setup_logging(const std::string& program, const std::string& level) {
  // A full queue drops the oldest lines rather than stalling an I/O thread; records never go through here.
  spdlog::init_thread_pool(8192, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>(program, sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %n %l: %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

int run_main(const std::string& program, int (*main_body)(int, char**), int argc, char** argv) {
  try {
    int status = main_body(argc, argv);
    spdlog::shutdown();
    return status;
  } catch (const std::exception& e) {
    spdlog::shutdown();
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
}

}  // namespace faas::frontend
