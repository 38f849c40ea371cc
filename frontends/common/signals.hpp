// signals.hpp — how the servers learn they should stop: SIGINT or SIGTERM, taken by a thread of their own.
#pragma once

#include <signal.h>

#include <atomic>
#include <thread>

namespace faas::frontend {

class StopSignal {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread, so in every thread started after this (construct it first),
  // and starts the thread that waits for them.
  StopSignal();
  // Joins the waiting thread, waking it first when no signal came (a start that failed unwinds through here).
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  bool requested() const noexcept { return requested_.load(); }

 private:
  sigset_t signals_;
  std::atomic<bool> requested_{false};
  std::atomic<bool> closing_{false};
  std::thread waiter_;
};

}  // namespace faas::frontend
