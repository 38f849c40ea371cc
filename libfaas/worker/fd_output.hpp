// What a function writes straight to file descriptors 1 and 2 (os.write, C extensions, child processes): in a
// worker both are a pipe that this process drains itself, so such output lands in the call's record, capped,
// and never in the server's log. Output written between calls is dropped and counted. No copy of the server's
// stderr is kept, since the function could write to it too. Lives until the process exits.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>

namespace faas::worker {

class FdOutput {
 public:
  // Points fds 1 and 2 at a pipe. Throws std::runtime_error.
  explicit FdOutput(std::size_t limit);
  FdOutput(const FdOutput&) = delete;
  FdOutput& operator=(const FdOutput&) = delete;

  void begin_call();
  // Everything written since begin_call(), capped at the limit (then "[output truncated]").
  std::string end_call();
  std::size_t dropped() const noexcept { return dropped_.load(); }

 private:
  void drain_locked();  // reads what the pipe holds; mutex_ held
  void drain_loop();

  std::size_t limit_;
  int read_fd_ = -1;
  std::mutex mutex_;
  bool in_call_ = false;
  bool truncated_ = false;
  std::string text_;
  std::atomic<std::size_t> dropped_{0};
};

}  // namespace faas::worker
