// Running a helper program (python -m venv, pip) with a timeout and its output kept.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace faas {

struct ProcessResult {
  int exit_code = -1;       // valid when the process exited
  int signal = 0;           // the signal that ended it, if any
  bool timed_out = false;   // killed because it ran past the timeout
  std::string output;       // stdout and stderr, interleaved, the last `output_limit` bytes
  bool ok() const noexcept { return !timed_out && signal == 0 && exit_code == 0; }
};

struct ProcessOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  std::size_t output_limit = 64 * 1024;
  std::map<std::string, std::string> set_env;   // added to (or replacing in) the inherited environment
  std::vector<std::string> drop_env_prefixes;   // inherited variables that start with one of these are removed
  std::vector<std::string> keep_env_only;       // when set, only inherited variables starting with one of these
  const class Confinement* confinement = nullptr;  // set: the child runs confined (util/confinement.hpp)
};

// The argv/envp form of `strings` (null-terminated), pointing into them: keep them alive and unchanged.
std::vector<char*> c_string_array(std::vector<std::string>& strings);

// A file descriptor that closes itself.
class OwnedFd {
 public:
  explicit OwnedFd(int fd = -1) noexcept : fd_(fd) {}
  ~OwnedFd() { reset(); }
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.release()) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept;

 private:
  int fd_;
};

// Two connected descriptors, close-on-exec: a pipe (read end first) or a Unix stream socketpair. Throws
// Error(internal).
std::pair<OwnedFd, OwnedFd> make_pipe();
std::pair<OwnedFd, OwnedFd> make_socketpair();

// What a spawned child's descriptors become (posix_spawn_file_actions_t, destroyed with this object).
class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  SpawnActions& open(int fd, const char* path, int flags);
  SpawnActions& dup2(int from, int to);  // the copy loses close-on-exec
  const posix_spawn_file_actions_t& get() const noexcept { return actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// Spawns argv[0] (a path; no PATH search) with exactly `env`, in its own process group, every signal at its
// default and none blocked; `actions` arranges its descriptors. Returns its pid; throws Error(internal).
pid_t spawn_in_own_group(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         const SpawnActions& actions);

// Spawns argv[0] (a path; no PATH search) in its own process group, with stdin from /dev/null, and waits for it.
// On timeout the whole group gets SIGKILL. Never throws for the child's failure, only for spawn errors.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options);

}  // namespace faas
