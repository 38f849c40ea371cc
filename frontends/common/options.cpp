// options.cpp — shared command line, environment and logging of the servers.
#include "options.hpp"

#include <cmath>
#include <cstdio>
#include <exception>

#include <unistd.h>

#include <cerrno>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace faas::frontend {

void add_common_options(CLI::App& app, CommonOptions& options) {
  options.engine.data_dir = "./faas-data";
  app.add_option("--data-dir", options.engine.data_dir, "Where functions, environments and records live")
      ->envname("FAAS_DATA_DIR")
      ->capture_default_str();
  app.add_option("--store", options.engine.store,
                 "Where functions and records are kept: sqlite (in the data dir) or a PostgreSQL URI "
                 "(postgresql://user@host:port/database) shared by a cluster of servers")
      ->envname("FAAS_STORE")
      ->capture_default_str();
  app.add_option("--node-id", options.engine.node_id,
                 "This server's name among those sharing the store (default: host name and port or client id)")
      ->envname("FAAS_NODE_ID");
  app.add_option("--isolation", options.isolation, "Where functions run: process (worker processes, the default) or inprocess (fastest, no isolation)")
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
  app.add_option("--max-queue", options.engine.max_queue, "Invocations waiting beyond those; more get 'overloaded'")
      ->envname("FAAS_MAX_QUEUE")
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "trace, debug, info, warning, error or off")
      ->envname("FAAS_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--log-retention", options.engine.log_retention, "Records kept per function (0: all)")
      ->envname("FAAS_LOG_RETENTION")
      ->capture_default_str();
  app.add_option("--keep-versions", options.engine.keep_versions,
                 "Versions of each function's code kept for rollback and pinned calls (the current one always)")
      ->envname("FAAS_KEEP_VERSIONS")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--python", options.engine.python, "Python 3.11 interpreter that builds virtualenvs")
      ->envname("FAAS_PYTHON")
      ->capture_default_str();
  auto& workers = options.engine.workers;
  app.add_option("--max-workers", workers.max_per_function, "With process isolation: worker processes per function")
      ->envname("FAAS_MAX_WORKERS")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  app.add_option("--max-workers-total", workers.max_total,
                 "With process isolation: worker processes across all functions (0: one per 64 MB of memory, 8 to 512)")
      ->envname("FAAS_MAX_WORKERS_TOTAL")
      ->capture_default_str();
  app.add_option("--memory-limit", workers.memory_limit_mb, "With process isolation: MB of address space per worker (0: none)")
      ->envname("FAAS_MEMORY_LIMIT")
      ->capture_default_str();
  app.add_option("--pip-index", options.engine.pip_index,
                 "The package index pip installs requirements from (its --index-url); default: pip's own")
      ->envname("FAAS_PIP_INDEX");
  app.add_flag("!--no-sandbox", workers.sandbox,
               "With process isolation: run workers without the sandbox, with the server's authority (not advised)")
      ->envname("FAAS_SANDBOX");
  app.add_option("--function-tmp-mb", workers.tmp_mb,
                 "With the sandbox: MiB of a worker's private /tmp, and the largest file it may write")
      ->envname("FAAS_FUNCTION_TMP_MB")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--function-network", options.function_network,
                 "With the sandbox: functions reach the host's network ('host') or only their own loopback ('none')")
      ->envname("FAAS_FUNCTION_NETWORK")
      ->check(CLI::IsMember({"host", "none"}))
      ->capture_default_str();
}

std::optional<int> parse_command_line(CLI::App& app, CommonOptions& options, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const auto& store = options.engine.store;
  if (store != "sqlite" && !store.starts_with("postgresql://") && !store.starts_with("postgres://")) {
    throw Error(ErrorCode::invalid_input, "--store must be 'sqlite' or a PostgreSQL URI "
                                          "(postgresql://user@host:port/database)");
  }
  options.engine.isolation = parse_isolation(options.isolation);
  options.engine.workers.network = parse_function_network(options.function_network);
  options.engine.timeout = std::chrono::milliseconds(std::llround(options.timeout_seconds * 1000));
  return std::nullopt;
}

void default_node_id(CommonOptions& options, const std::string& suffix) {
  if (!options.engine.node_id.empty()) return;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "localhost");
  options.engine.node_id = std::string(host) + ":" + suffix;
}

namespace {

// Lines go to a buffer that is written to stderr when it fills, every second, and at once for warnings and
// errors: a busy server's access log then costs no system call or thread wake-up per request.
class BufferedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  ~BufferedStderrSink() override {
    std::lock_guard lock(mutex_);
    flush_();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    formatter_->format(message, buffer_);
    if (buffer_.size() >= 64 * 1024) flush_();
  }

  void flush_() override {
    std::size_t written = 0;
    while (written < buffer_.size()) {
      ssize_t n = ::write(STDERR_FILENO, buffer_.data() + written, buffer_.size() - written);
      if (n <= 0 && errno != EINTR) break;  // stderr is gone; drop the lines rather than block
      if (n > 0) written += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

 private:
  spdlog::memory_buf_t buffer_;
};

}  // namespace

void warn_if_unconfined(const EngineConfig& engine) {
  if (engine.isolation == Isolation::inprocess) {
    spdlog::warn("--isolation inprocess: functions run inside this server, with its authority over its files, "
                 "network and processes, and can crash it (docs/security.md)");
  }
}

void setup_logging(const std::string& program, const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(program, std::make_shared<BufferedStderrSink>());
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %n %l: %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

int run_main(const std::string& program, int (*main_body)(int, char**), int argc, char** argv) {
  try {
    int status = main_body(argc, argv);
    spdlog::default_logger()->flush();
    spdlog::shutdown();
    return status;
  } catch (const std::exception& e) {
    spdlog::default_logger()->flush();
    spdlog::shutdown();
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
}

}  // namespace faas::frontend
