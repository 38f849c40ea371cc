// origins.hpp — which browser origins may send writes to faas-http with the user's credentials.
#pragma once

#include <string>
#include <vector>

namespace faas::http {

// The origins of pages served by this very server: http://localhost:PORT, http://127.0.0.1:PORT,
// http://[::1]:PORT, the machine's host name, and the listening address (every local interface address when
// `host` is 0.0.0.0 or ::). Port 80 is also written without a port.
std::vector<std::string> local_origins(const std::string& host, unsigned short port);

// "scheme://host[:port]" in lower case, without a trailing slash; empty when `origin` is not of that form.
std::string normalize_origin(const std::string& origin);

}  // namespace faas::http
