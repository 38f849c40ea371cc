// faas-worker: runs one function's calls in a process of its own, for the engine's process isolation.
//
// The engine starts it with its socket as fd 3 (runtime/worker_protocol.hpp), usually confined
// (runtime/sandbox.hpp: no capabilities, no_new_privs and the syscall filter are in force before it starts, and
// it is PID 1 of its namespace). It closes every other inherited descriptor, dies with its parent, caps its own
// address space and open files and, when confined, its processes and file size, then starts Python (isolated:
// only the standard library on sys.path), says hello, and then serves:
// one `load` (the function, with only its virtualenv added to sys.path) and its calls, one at a time, each run
// by the same PythonRunner as in-process execution (output capture, the in-interpreter timeout, the converter).
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
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
#include "util/ids.hpp"

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
  std::size_t output_limit = 64 * 1024;
  std::size_t result_limit = 16 * 1024 * 1024;
  std::string python = "/usr/bin/python3";
  bool confined = false;
  unsigned max_processes = 64;
  std::size_t max_file_mb = 64;
  unsigned max_open_files = 1024;
};

void limit(int resource, rlim_t value, const char* what) {
  rlimit both{value, value};
  if (::setrlimit(resource, &both) != 0) die(std::string("setrlimit ") + what + ": " + std::strerror(errno));
}

void harden(const Settings& settings) {
  ::close_range(channel + 1, ~0u, 0);  // whatever a thread of the server opened without close-on-exec
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (settings.parent != 0 && ::getppid() != settings.parent) std::_Exit(0);  // the engine died before prctl
  limit(RLIMIT_NOFILE, settings.max_open_files, "NOFILE");
  if (!settings.confined) return;
  // In the sandbox's own user namespace RLIMIT_NPROC counts only its processes (and threads): a fork bomb stops
  // here and nowhere else.
  limit(RLIMIT_NPROC, settings.max_processes, "NPROC");
  limit(RLIMIT_FSIZE, static_cast<rlim_t>(settings.max_file_mb) << 20, "FSIZE");
  ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead of killing the worker
  limit(RLIMIT_CORE, 0, "CORE");
}

// The function this worker serves, from a load frame: the process takes on its settings (working directory,
// memory limit, environment). True when its memory limit is in force.
std::shared_ptr<FunctionSpec> read_spec(wire::FrameReader& frame, PythonHost& host, bool& memory_limited) {
  auto spec = std::make_shared<FunctionSpec>(wire::read_load(frame));
  std::error_code ec;
  if (!spec->staged_source.empty() && !fs::exists(spec->staged_source, ec)) spec->staged_source.clear();  // moved in
  // Its own folder as working directory. A staged upload's folder becomes the function's folder when it is
  // moved in place (a rename keeps the directory), so the worker follows it there.
  auto folder = (spec->staged_source.empty() ? spec->source : spec->staged_source).parent_path();
  if (::chdir(folder.c_str()) != 0) (void)::chdir("/");
  memory_limited = false;
#ifndef FAAS_UNDER_ASAN  // AddressSanitizer reserves terabytes of address space for its shadow memory
  if (spec->memory_limit_mb > 0) {
    limit(RLIMIT_AS, static_cast<rlim_t>(spec->memory_limit_mb) << 20, "AS");
    memory_limited = true;
  }
#endif
  try {
    host.set_environment(spec->environment);
  } catch (const std::exception& e) {
    die(std::string("cannot set the function's environment: ") + e.what());
  }
  return spec;
}

// Confined, the worker is the first process of its PID namespace: whatever else is there was started by a call
// (a child, a daemon that called setsid) and must not run into the next call's time.
// The last pid handed out in our PID namespace: unchanged since the previous look, nothing was started.
long last_pid_in_namespace() {
  static int fd = ::open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
  char text[32] = {};
  ssize_t n = fd < 0 ? -1 : ::pread(fd, text, sizeof text - 1, 0);
  return n > 0 ? std::strtol(text, nullptr, 10) : -1;
}

void kill_strays() {
  static long seen = -2;
  long last = last_pid_in_namespace();
  if (last == seen && last != -1) return;  // the common case, at the cost of one small read
  seen = last;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return;
  const pid_t self = ::getpid();
  bool killed = false;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    killed = ::kill(static_cast<pid_t>(pid), SIGKILL) == 0 || killed;
  }
  ::closedir(proc);
  // As the namespace's first process this one inherits every orphan: reap them all as they die (a second at
  // most; a process stuck in the kernel is left for the next look).
  for (int round = 0; killed && round < 1000; ++round) {
    pid_t pid = ::waitpid(-1, nullptr, WNOHANG | __WALL);
    if (pid < 0) break;                  // none left
    if (pid == 0) ::usleep(1000);        // some still dying
  }
}

// The threads of this process now (num_threads of /proc/self/stat); -1 when it cannot be read.
long thread_count() {
  static int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  char text[1024] = {};
  ssize_t n = fd < 0 ? -1 : ::pread(fd, text, sizeof text - 1, 0);
  const char* field = n > 0 ? std::strrchr(text, ')') : nullptr;  // the name may hold spaces and parentheses
  for (int i = 0; field != nullptr && i < 18; ++i) field = std::strchr(field + 1, ' ');  // to field 20
  return field != nullptr ? std::strtol(field + 1, nullptr, 10) : -1;
}

// Runs one call frame and sends its result. GIL held. `threads_at_load`: the process's threads once the function
// was imported (its own, started at import, count as its); a call that leaves more running retires the worker,
// so that they cannot run on into the next call's time.
void serve_call(PythonRunner& runner, const FunctionSpec& spec, CallSlot& slot, worker::FdOutput& fd_output,
                wire::FrameReader& frame, std::string& out, std::size_t output_limit, bool confined,
                long threads_at_load) {
  Invocation record;
  record.args = frame.text();
  record.kwargs = frame.text();
  record.id = frame.text();
  if (auto trace = parse_traceparent(frame.text())) {  // this invocation's own span, as the engine made it
    record.trace_id = std::move(trace->trace_id);
    record.span_id = std::move(trace->parent_id);
    record.trace_flags = std::move(trace->flags);
  }
  const std::chrono::milliseconds timeout(static_cast<std::int64_t>(frame.u64()));
  fd_output.begin_call();
  std::string chunk_frame;
  runner.run(spec, record, slot, [&chunk_frame](std::string_view chunk) {  // each chunk leaves as it is yielded
    chunk_frame.clear();
    wire::FrameWriter(chunk_frame, wire::Kind::chunk).text(chunk).finish();
    send_or_exit(chunk_frame);
  }, timeout);
  if (auto written = fd_output.end_call(); !written.empty()) {
    // What went to the descriptors follows what went through sys.stdout and sys.stderr, within one limit.
    auto room = output_limit > record.output.size() ? output_limit - record.output.size() : 0;
    record.output.append(written, 0, room);
    if (written.size() > room && record.output.find("[output truncated]") == std::string::npos) {
      record.output += "\n[output truncated]";
    }
  }
  const bool retiring = threads_at_load > 0 && thread_count() > threads_at_load;
  out.clear();
  wire::write_result(out, record, retiring);
  send_or_exit(out);
  if (retiring) std::_Exit(0);
  if (confined) kill_strays();
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  CLI::App app{"faas-worker: runs one function for a libfaas engine (started by the engine, not by hand)"};
  app.add_option("--parent", settings.parent, "the engine's pid");
  app.add_option("--output-limit", settings.output_limit, "bytes of output kept per call");
  app.add_option("--result-limit", settings.result_limit, "bytes of a result's JSON");
  app.add_option("--python", settings.python, "sys.executable");
  app.add_flag("--confined", settings.confined, "inside the sandbox: process and file-size limits, stray processes killed");
  app.add_option("--max-processes", settings.max_processes, "RLIMIT_NPROC when confined");
  app.add_option("--max-file-mb", settings.max_file_mb, "RLIMIT_FSIZE when confined");
  app.add_option("--max-open-files", settings.max_open_files, "RLIMIT_NOFILE");
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
  // Made at the load, with the function's limits.
  std::unique_ptr<PythonRunner> runner;
  CallSlot slot;
  std::unique_ptr<SlotWatchdog> watchdog;
  long threads_at_load = -1;

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
        bool memory_limited = false;
        auto loading = read_spec(frame, *host, memory_limited);
        runner = std::make_unique<PythonRunner>(
            *host, RunnerLimits{settings.output_limit, settings.result_limit, memory_limited});
        watchdog = std::make_unique<SlotWatchdog>(*host, slot, loading->timeout);
        std::string error;
        try {
          runner->load(*loading, slot);
          threads_at_load = thread_count();
          loading->staged_source.clear();
          spec = loading;
        } catch (const Error& e) {
          error = e.what();
        }
        out.clear();
        wire::FrameWriter(out, wire::Kind::loaded).text(error).finish();
        send_or_exit(out);
      } else if (frame.kind() == wire::Kind::call && spec) {
        serve_call(*runner, *spec, slot, *fd_output, frame, out, settings.output_limit, settings.confined,
                   threads_at_load);
      } else {
        die("unexpected frame");
      }
    } catch (const Error& e) {
      die(e.what());
    }
  }
  std::_Exit(0);  // no interpreter teardown: nothing is left to flush
}
