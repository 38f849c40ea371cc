// tcp_nodelay.cpp — finds the broker's socket among our descriptors (Paho keeps it private) and sets TCP_NODELAY.
#include "tcp_nodelay.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdlib>

namespace faas::mqtt {

int set_tcp_nodelay_to_port(int port) {
  DIR* fds = ::opendir("/proc/self/fd");
  if (fds == nullptr) return 0;
  int changed = 0;
  while (dirent* entry = ::readdir(fds)) {
    int fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == ::dirfd(fds)) continue;
    int type = 0;
    socklen_t length = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) continue;
    sockaddr_storage peer{};
    length = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) continue;
    int peer_port = peer.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port)
                    : peer.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port)
                                                 : -1;
    if (peer_port != port) continue;
    int on = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0) ++changed;
  }
  ::closedir(fds);
  return changed;
}

}  // namespace faas::mqtt
