#include "runtime/worker_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "faas/error.hpp"
#include "util/subprocess.hpp"

namespace faas::runtime {

namespace {

std::string killed_by(int sig) {
  const char* name = ::strsignal(sig);
  return "was killed by signal " + std::to_string(sig) + (name != nullptr ? std::string(" (") + name + ")" : "");
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return killed_by(WTERMSIG(status));
  return "ended with status " + std::to_string(status);
}

}  // namespace

std::unique_ptr<WorkerProcess> WorkerProcess::spawn(const std::vector<std::string>& argv,
                                                    const std::vector<std::string>& env,
                                                    const Confinement* confinement) {
  auto [ours, theirs] = make_socketpair();
  pid_t pid = -1;  // on failure both ends close themselves
  if (confinement != nullptr) {
    pid = spawn_confined(*confinement, argv, env, {{0, -1}, {1, -1}, {3, theirs.get()}});
  } else {
    SpawnActions actions;
    actions.open(0, "/dev/null", O_RDONLY).open(1, "/dev/null", O_WRONLY).dup2(theirs.get(), 3);
    pid = spawn_in_own_group(argv, env, actions);
  }
  return std::unique_ptr<WorkerProcess>(new WorkerProcess(pid, ours.release()));
}

WorkerProcess::~WorkerProcess() {
  ::close(fd_);  // an idle worker reads end-of-file and exits
  if (!reaped_) reap(std::chrono::milliseconds(0));
}

bool WorkerProcess::send(std::string_view bytes) { return wire::send_all(fd_, bytes); }

bool WorkerProcess::hung_up() const {
  pollfd entry{fd_, POLLRDHUP, 0};
  return ::poll(&entry, 1, 0) > 0 && (entry.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

WorkerProcess::Received WorkerProcess::receive(Clock::time_point deadline, std::string_view& frame) {
  for (;;) {
    try {
      if (auto next = buffer_.next()) {
        frame = *next;
        return Received::frame;
      }
    } catch (const Error&) {  // an oversized frame: the worker is broken or hostile
      kill();
      return Received::gone;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) return Received::timeout;
    pollfd entry{fd_, POLLIN, 0};
    int ready = ::poll(&entry, 1, static_cast<int>(std::min<long long>(left + 1, 60'000)));
    if (ready < 0 && errno != EINTR) return Received::gone;
    if (ready <= 0) continue;
    auto& data = buffer_.data();
    std::size_t old_size = data.size();
    data.resize(old_size + 65536);
    ssize_t n = ::read(fd_, data.data() + old_size, 65536);
    data.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return Received::gone;
  }
}

void WorkerProcess::kill() noexcept {
  if (!reaped_) ::kill(-pid_, SIGKILL);
}

std::string WorkerProcess::reap(std::chrono::milliseconds patience) {
  if (reaped_) return exit_description_;
  // Look without reaping (WNOWAIT): while the worker is an unreaped zombie its process group id cannot be reused,
  // so the kill below reaches only what the function left behind in that group.
  auto deadline = Clock::now() + patience;
  for (;;) {
    siginfo_t info{};
    int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if ((rc == 0 && info.si_pid == pid_) || (rc < 0 && errno != EINTR) || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  exit_description_ = describe(status);
  return exit_description_;
}

}  // namespace faas::runtime
