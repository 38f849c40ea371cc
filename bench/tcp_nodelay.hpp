// tcp_nodelay.hpp — Nagle off on the broker connection, which Paho C cannot do itself (for the load generator).
#pragma once

namespace faas::mqtt {

// Sets TCP_NODELAY on this process's TCP sockets connected to `port`. Without it a QoS 1 answer waits ~40 ms
// for a delayed ACK at each hop (docs/mqtt.md). Returns how many sockets it changed.
int set_tcp_nodelay_to_port(int port);

}  // namespace faas::mqtt
