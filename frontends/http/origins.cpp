#include "origins.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace faas::http {

namespace {

void add(std::vector<std::string>& out, const std::string& host, unsigned short port) {
  std::string name = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string origin = "http://" + name + ":" + std::to_string(port);
  if (std::find(out.begin(), out.end(), origin) == out.end()) out.push_back(origin);
  if (port == 80 && std::find(out.begin(), out.end(), "http://" + name) == out.end()) out.push_back("http://" + name);
}

}  // namespace

std::vector<std::string> local_origins(const std::string& host, unsigned short port) {
  std::vector<std::string> out;
  for (const char* loopback : {"localhost", "127.0.0.1", "::1"}) add(out, loopback, port);
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') add(out, name, port);
  if (host != "0.0.0.0" && host != "::") {
    add(out, host, port);
    return out;
  }
  ifaddrs* interfaces = nullptr;
  if (::getifaddrs(&interfaces) != 0) return out;
  for (ifaddrs* it = interfaces; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (it->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, text, sizeof text);
    } else if (it->ifa_addr->sa_family == AF_INET6 && host == "::") {
      auto* address = reinterpret_cast<sockaddr_in6*>(it->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&address->sin6_addr)) continue;  // needs a zone id no browser sends
      ::inet_ntop(AF_INET6, &address->sin6_addr, text, sizeof text);
    } else {
      continue;
    }
    add(out, text, port);
  }
  ::freeifaddrs(interfaces);
  return out;
}

std::string normalize_origin(const std::string& origin) {
  std::string out = origin;
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  while (!out.empty() && out.back() == '/') out.pop_back();
  auto scheme = out.find("://");
  if (scheme == std::string::npos || scheme == 0 || scheme + 3 >= out.size()) return {};
  if (out.find('/', scheme + 3) != std::string::npos) return {};
  return out;
}

}  // namespace faas::http
