// config.hpp — what faas-http is told at start (filled from the command line in main.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace faas::http {

struct HttpConfig {
  std::string host = "0.0.0.0";
  unsigned short port = 8080;
  unsigned io_threads = 1;
  bool public_invoke = false;                   // /function/* without credentials
  std::string user = "admin";
  std::string password;                         // never empty once main() has run
  std::size_t max_header_bytes = 16 * 1024;     // request line and headers
  std::size_t max_body_bytes = 1024 * 1024;     // every route but /admin/upload
  std::size_t max_upload_bytes = 16 * 1024 * 1024;
  // A connection must deliver a whole request within this time of connecting or of its previous answer; one
  // that began a request is answered 408, an idle one is closed.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // Before its first complete request a connection has proved nothing: it gets less time, and when the server
  // or its address is at the connection limit, the oldest such connection is closed to make room, so a crowd of
  // idle sockets cannot lock out clients that talk.
  std::chrono::milliseconds first_request_timeout{std::chrono::seconds(10)};
  std::size_t max_connections = 1000;
  std::size_t max_connections_per_address = 256;
  // Origins (scheme://host[:port]) whose pages may send writes (POST, DELETE) with the user's credentials.
  // main() adds the loopback names and the listening addresses; --public-origin adds more.
  std::vector<std::string> allowed_origins;
  unsigned blocking_threads = 4;               // uploads (pip), deletes, reads of the database
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(5)};  // for answers still being written
};

}  // namespace faas::http
