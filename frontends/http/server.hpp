// server.hpp — the socket side of faas-http: Boost.Beast HTTP/1.1 with keep-alive over a few Asio I/O threads.
//
// Each connection reads one request at a time within the configured limits, hands it to the Api, and writes the
// answer when the Api replies (from any thread). Slow, oversized and malformed requests get their 4xx here,
// before the Api sees them. Beast and Asio stay inside server.cpp; this header is all main.cpp needs.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "api.hpp"
#include "config.hpp"
#include "metrics.hpp"

namespace faas::http {

class Server {
 public:
  // Binds and listens on config.host:config.port. Throws std::runtime_error when it cannot.
  Server(const HttpConfig& config, Metrics& metrics);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string local_address() const;  // "HOST:PORT" actually bound (port 0 picks a free one)
  Api::Runner blocking_runner();      // runs tasks on the server's pool of blocking threads

  void start(Api& api);               // starts accepting and the I/O threads; `api` must outlive the server
  void wait_for_signal();             // blocks until SIGINT or SIGTERM
  void stop_accepting();              // closes the listening socket; open connections close after their answer
  // Waits until every request read has been answered, at most `grace`. Returns how many were not.
  std::size_t drain(std::chrono::milliseconds grace);
  void stop();                        // stops the I/O threads and the blocking pool. Idempotent.

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::http
