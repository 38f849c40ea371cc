// One faas-worker process seen from the engine: spawned with posix_spawn or confined (never a bare fork of the
// threaded server), its socket, its frames, its death. RAII: destroying it kills and reaps the process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/worker_protocol.hpp"
#include "util/confinement.hpp"
#include "util/subprocess.hpp"

namespace faas::runtime {

class WorkerProcess {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts `argv` (argv[0] a path) with exactly `env`, in its own process group, stdin and stdout on /dev/null,
  // stderr shared with this process, and its end of a new socketpair as fd 3; confined when `confinement` is
  // given (in a new session, then, rather than a group). Throws Error(internal).
  static std::unique_ptr<WorkerProcess> spawn(const std::vector<std::string>& argv,
                                              const std::vector<std::string>& env,
                                              const Confinement* confinement = nullptr);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }

  // False when the worker is gone. It then read none of `bytes`: a dead peer's socket refuses them (EPIPE).
  bool send(std::string_view bytes);
  // Whether the worker closed its socket (it died, or is dying) while nothing was asked of it. Never blocks.
  bool hung_up() const;

  enum class Received { frame, timeout, gone };
  // Waits until `deadline` for the next frame, which stays valid until the next receive(). `gone`: the worker
  // closed its socket, or sent more than wire::max_frame (then it is killed).
  Received receive(Clock::time_point deadline, std::string_view& frame);

  void kill() noexcept;  // SIGKILL to its process group
  // Waits for the process to end and says how: "exited with code 1", "was killed by signal 11 (Segmentation
  // fault)". Kills it first if it is still running after `patience`.
  std::string reap(std::chrono::milliseconds patience = std::chrono::milliseconds(500));

 private:
  WorkerProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}

  pid_t pid_;
  int fd_;
  bool reaped_ = false;
  std::string exit_description_;
  wire::FrameBuffer buffer_;
};

}  // namespace faas::runtime
