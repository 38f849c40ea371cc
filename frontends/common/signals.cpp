// signals.cpp — the thread that waits for SIGINT and SIGTERM.
#include "signals.hpp"

#include <pthread.h>

#include <spdlog/spdlog.h>

namespace faas::frontend {

StopSignal::StopSignal() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  waiter_ = std::thread([this] {
    int caught = 0;
    sigwait(&signals_, &caught);
    if (!closing_) spdlog::info("caught signal {}; shutting down", caught);
    requested_ = true;
  });
}

StopSignal::~StopSignal() {
  if (!requested_) {
    closing_ = true;
    pthread_kill(waiter_.native_handle(), SIGTERM);  // blocked everywhere: it reaches the waiter's sigwait
  }
  waiter_.join();
}

}  // namespace faas::frontend
