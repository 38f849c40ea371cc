// faas-worker: runs one function's calls in a process of its own, for the engine's process isolation.
//
// The engine starts it with posix_spawn, its socket as fd 3 (runtime/worker_protocol.hpp). It closes every other
// inherited descriptor, dies with its parent, optionally enters new user and network namespaces, caps its own
// address space, starts Python (isolated: only the standard library on sys.path), says hello, and then serves:
// one `load` (the function, with only its virtualenv added to sys.path) and its calls, one at a time, each run
// by the same PythonRunner as in-process execution (output capture, the in-interpreter timeout, the converter).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "faas/error.hpp"
#include "fd_output.hpp"
#include "runtime/python_runner.hpp"
#include "runtime/worker_protocol.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define FAAS_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAAS_UNDER_ASAN 1
#endif
#endif

namespace fs = std::filesystem;
using namespace faas;
using namespace faas::runtime;

namespace {

constexpr int channel = 3;

// Until the function's output takes fd 2 over (once Python is up), this is the server's stderr.
[[noreturn]] void die(const std::string& message, int code = 3) {
  ::dprintf(2, "faas-worker: %s\n", message.c_str());
  std::_Exit(code);
}

void send_or_exit(const std::string& bytes) {
  if (!wire::send_all(channel, bytes)) std::_Exit(0);  // the engine is gone
}

struct Settings {
  pid_t parent = 0;
  long long timeout_ms = 30000;
  std::size_t output_limit = 64 * 1024;
  std::size_t result_limit = 16 * 1024 * 1024;
  std::size_t memory_limit_mb = 0;
  std::string python = "/usr/bin/python3";
  bool sandbox = false;
};

void harden(const Settings& settings) {
  ::close_range(channel + 1, ~0u, 0);  // whatever a thread of the server opened without close-on-exec
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (settings.parent != 0 && ::getppid() != settings.parent) std::_Exit(0);  // the engine died before prctl
  if (settings.sandbox && ::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
    die(std::string("cannot enter new user and network namespaces (--sandbox): ") + std::strerror(errno));
  }
#ifndef FAAS_UNDER_ASAN  // AddressSanitizer reserves terabytes of address space for its shadow memory
  if (settings.memory_limit_mb > 0) {
    rlim_t bytes = static_cast<rlim_t>(settings.memory_limit_mb) * 1024 * 1024;
    rlimit limit{bytes, bytes};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) die(std::string("setrlimit: ") + std::strerror(errno));
  }
#endif
}

// The function this worker serves, from a load frame.
std::shared_ptr<FunctionSpec> read_spec(wire::FrameReader& frame) {
  auto spec = std::make_shared<FunctionSpec>();
  spec->name = frame.text();
  spec->version = frame.u64();
  spec->source = std::string(frame.text());
  std::string staged(frame.text());
  std::error_code ec;
  if (!staged.empty() && fs::exists(staged, ec)) spec->staged_source = staged;  // not yet moved in place
  auto dirs = frame.u64();
  for (std::uint64_t i = 0; i < dirs; ++i) spec->site_dirs.emplace_back(frame.text());
  // Its own folder as working directory. A staged upload's folder becomes the function's folder when it is
  // moved in place (a rename keeps the directory), so the worker follows it there.
  auto folder = (spec->staged_source.empty() ? spec->source : spec->staged_source).parent_path();
  if (::chdir(folder.c_str()) != 0) (void)::chdir("/");
  return spec;
}

// Runs one call frame and sends its result. GIL held.
void serve_call(PythonRunner& runner, const FunctionSpec& spec, CallSlot& slot, worker::FdOutput& fd_output,
                wire::FrameReader& frame, std::string& out, std::size_t output_limit) {
  Invocation record;
  record.args = frame.text();
  record.kwargs = frame.text();
  fd_output.begin_call();
  runner.run(spec, record, slot);
  if (auto written = fd_output.end_call(); !written.empty()) {
    // What went to the descriptors follows what went through sys.stdout and sys.stderr, within one limit.
    auto room = output_limit > record.output.size() ? output_limit - record.output.size() : 0;
    record.output.append(written, 0, room);
    if (written.size() > room && record.output.find("[output truncated]") == std::string::npos) {
      record.output += "\n[output truncated]";
    }
  }
  out.clear();
  wire::write_result(out, record);
  send_or_exit(out);
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  CLI::App app{"faas-worker: runs one function for a libfaas engine (started by the engine, not by hand)"};
  app.add_option("--parent", settings.parent, "the engine's pid");
  app.add_option("--timeout-ms", settings.timeout_ms, "per call");
  app.add_option("--output-limit", settings.output_limit, "bytes of output kept per call");
  app.add_option("--result-limit", settings.result_limit, "bytes of a result's JSON");
  app.add_option("--memory-limit-mb", settings.memory_limit_mb, "address space (RLIMIT_AS); 0 = none");
  app.add_option("--python", settings.python, "sys.executable");
  app.add_flag("--sandbox", settings.sandbox, "new user and network namespaces");
  CLI11_PARSE(app, argc, argv);
  if (::fcntl(channel, F_GETFD) < 0) die("fd 3 is not open: the engine starts faas-worker, not a shell");
  harden(settings);

  PythonHost* host = nullptr;
  try {
    host = &PythonHost::get(settings.python);
  } catch (const std::exception& e) {
    die(e.what());
  }
  std::unique_ptr<worker::FdOutput> fd_output;
  try {
    fd_output = std::make_unique<worker::FdOutput>(settings.output_limit);
  } catch (const std::exception& e) {
    die(e.what());
  }
  RunnerLimits limits{std::chrono::milliseconds(settings.timeout_ms), settings.output_limit, settings.result_limit,
                      settings.memory_limit_mb};
  PythonRunner runner(*host, limits);
  CallSlot slot;
  SlotWatchdog watchdog(*host, slot, limits.timeout);

  std::string out;
  wire::FrameWriter(out, wire::Kind::hello).u64(static_cast<std::uint64_t>(::getpid())).finish();
  send_or_exit(out);

  std::shared_ptr<const FunctionSpec> spec;
  wire::FrameBuffer input;
  char chunk[65536];
  for (;;) {
    std::optional<std::string_view> next;
    try {
      next = input.next();
    } catch (const Error& e) {
      die(e.what());
    }
    if (!next) {
      ssize_t n = ::read(channel, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the engine closed the socket: done
      input.data().append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    try {
      wire::FrameReader frame(*next);
      GilLock gil;  // released while this loop waits for the socket, so the watchdog can always take it
      if (frame.kind() == wire::Kind::load) {
        if (spec) die("a worker loads one function");
        auto loading = read_spec(frame);
        std::string error;
        try {
          runner.load(*loading, slot);
          loading->staged_source.clear();
          spec = loading;
        } catch (const Error& e) {
          error = e.what();
        }
        out.clear();
        wire::FrameWriter(out, wire::Kind::loaded).text(error).finish();
        send_or_exit(out);
      } else if (frame.kind() == wire::Kind::call && spec) {
        serve_call(runner, *spec, slot, *fd_output, frame, out, settings.output_limit);
      } else {
        die("unexpected frame");
      }
    } catch (const Error& e) {
      die(e.what());
    }
  }
  std::_Exit(0);  // no interpreter teardown: nothing is left to flush
}
