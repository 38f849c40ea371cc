#include "util/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "faas/error.hpp"
#include "util/confinement.hpp"

extern char** environ;

namespace faas {

namespace {

std::vector<std::string> build_environment(const ProcessOptions& options) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view var(*entry);
    auto name = var.substr(0, var.find('='));
    bool dropped = options.set_env.count(std::string(name)) > 0;
    for (const auto& prefix : options.drop_env_prefixes) {
      dropped = dropped || name.substr(0, prefix.size()) == prefix;
    }
    if (!options.keep_env_only.empty()) {
      bool kept = false;
      for (const auto& prefix : options.keep_env_only) kept = kept || name.substr(0, prefix.size()) == prefix;
      dropped = dropped || !kept;
    }
    if (!dropped) env.emplace_back(var);
  }
  for (const auto& [name, value] : options.set_env) env.push_back(name + "=" + value);
  return env;
}

}  // namespace

std::vector<char*> c_string_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void OwnedFd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::pair<OwnedFd, OwnedFd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(ErrorCode::internal, std::string("pipe: ") + std::strerror(errno));
  return {OwnedFd(fds[0]), OwnedFd(fds[1])};
}

std::pair<OwnedFd, OwnedFd> make_socketpair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw Error(ErrorCode::internal, std::string("socketpair: ") + std::strerror(errno));
  }
  return {OwnedFd(fds[0]), OwnedFd(fds[1])};
}

SpawnActions& SpawnActions::open(int fd, const char* path, int flags) {
  posix_spawn_file_actions_addopen(&actions_, fd, path, flags, 0);
  return *this;
}

SpawnActions& SpawnActions::dup2(int from, int to) {
  posix_spawn_file_actions_adddup2(&actions_, from, to);
  return *this;
}

pid_t spawn_in_own_group(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         const SpawnActions& actions) {
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attributes, &all);  // the server's handlers and ignores are not the child's
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  auto args = argv;
  auto environment = env;
  auto arg_pointers = c_string_array(args);
  auto env_pointers = c_string_array(environment);
  pid_t pid = -1;
  int rc =
      ::posix_spawn(&pid, args[0].c_str(), &actions.get(), &attributes, arg_pointers.data(), env_pointers.data());
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) throw Error(ErrorCode::internal, "cannot run " + args[0] + ": " + std::strerror(rc));
  return pid;
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  auto [output_fd, child_output] = make_pipe();
  pid_t pid = -1;
  if (options.confinement != nullptr) {
    pid = spawn_confined(*options.confinement, argv, build_environment(options),
                         {{0, -1}, {1, child_output.get()}, {2, child_output.get()}});
  } else {
    SpawnActions actions;
    actions.open(0, "/dev/null", O_RDONLY).dup2(child_output.get(), 1).dup2(child_output.get(), 2);
    pid = spawn_in_own_group(argv, build_environment(options), actions);
  }
  child_output.reset();  // the child's copies are the only writers left: their end is our end-of-file

  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buffer[16384];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd entry{output_fd.get(), POLLIN, 0};
    int ready = ::poll(&entry, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = ::read(output_fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // every writer closed: the child (and what it started) is done
    result.output.append(buffer, static_cast<std::size_t>(n));
    if (result.output.size() > 2 * options.output_limit) {
      result.output.erase(0, result.output.size() - options.output_limit);
    }
  }
  output_fd.reset();
  if (result.output.size() > options.output_limit) {
    result.output.erase(0, result.output.size() - options.output_limit);
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace faas
