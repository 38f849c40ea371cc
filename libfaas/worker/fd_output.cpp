#include "fd_output.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace faas::worker {

namespace {

[[noreturn]] void fail(const char* what) { throw std::runtime_error(std::string(what) + ": " + std::strerror(errno)); }

}  // namespace

FdOutput::FdOutput(std::size_t limit) : limit_(limit) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe");
  read_fd_ = fds[0];
  ::fcntl(read_fd_, F_SETFL, O_NONBLOCK);
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups for chatty functions; a smaller pipe still works
  if (::dup2(fds[1], 1) < 0 || ::dup2(fds[1], 2) < 0) fail("dup2");
  ::close(fds[1]);
  std::thread([this] { drain_loop(); }).detach();  // until the process exits
}

void FdOutput::drain_locked() {
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(read_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: empty for now
    auto size = static_cast<std::size_t>(n);
    if (!in_call_) {
      dropped_ += size;
      continue;
    }
    auto room = limit_ > text_.size() ? limit_ - text_.size() : 0;
    if (size > room) truncated_ = true;
    text_.append(chunk, std::min(size, room));
  }
}

void FdOutput::drain_loop() {
  pollfd entry{read_fd_, POLLIN, 0};
  for (;;) {
    if (::poll(&entry, 1, -1) < 0 && errno != EINTR) return;
    std::lock_guard lock(mutex_);
    drain_locked();
  }
}

void FdOutput::begin_call() {
  std::lock_guard lock(mutex_);
  drain_locked();  // what came between calls is not this call's
  text_.clear();
  truncated_ = false;
  in_call_ = true;
}

std::string FdOutput::end_call() {
  std::lock_guard lock(mutex_);
  drain_locked();  // a write() that returned before the call did is in the pipe by now
  in_call_ = false;
  std::string out = std::move(text_);
  text_.clear();
  if (truncated_) out += "\n[output truncated]";
  return out;
}

}  // namespace faas::worker
