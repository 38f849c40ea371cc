// callbacks.hpp — delivering an asynchronous call's record to its X-Callback-Url (docs/http.md).
//
// The record is POSTed as JSON on a thread and io_context of its own, never on the server's I/O threads; an
// answer other than 2xx, a refused connection or a timeout (5 s to connect, 10 s for the answer) is tried again
// after 1, 2, 4 and 8 seconds, then given up (and logged). The record itself is in the function's logs either way.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace faas::http {

struct CallbackUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

// Parses an `http://host[:port][/path]` URL; nullopt for anything else (https, user info, a bad port, control
// characters, longer than 2 KiB).
std::optional<CallbackUrl> parse_callback_url(std::string_view url);

class Callbacks {
 public:
  Callbacks();
  ~Callbacks();  // deliveries still being tried are dropped
  Callbacks(const Callbacks&) = delete;
  Callbacks& operator=(const Callbacks&) = delete;

  // Queues `record` (JSON text) for `url` (as parse_callback_url accepts it). Never blocks.
  void deliver(const std::string& url, std::string record);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::http
