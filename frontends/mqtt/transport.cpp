// transport.cpp — the MQTT client behind Transport, on one Asio thread: TCP or TLS, CONNECT with the last will,
// SUBSCRIBE, then the status and the answers; QoS 1 both ways; keep-alive; reconnection with backoff.
#include "transport.hpp"

#include <array>
#include <cstdio>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "faas/invocation.hpp"
#include "wire.hpp"

namespace faas::mqtt {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = asio::ssl::stream<tcp::socket>;

struct BrokerAddress {
  bool tls = false;
  std::string host;
  std::string port;
};

// tcp://HOST[:PORT] or ssl://HOST[:PORT] (also mqtt:// and mqtts://); [v6] hosts in brackets.
BrokerAddress parse_broker(const std::string& uri) {
  auto bad = [&](const std::string& why) { return std::runtime_error("bad broker URI '" + uri + "': " + why); };
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) throw bad("use tcp://HOST:PORT or ssl://HOST:PORT");
  std::string scheme = uri.substr(0, scheme_end);
  BrokerAddress out;
  if (scheme == "ssl" || scheme == "mqtts") {
    out.tls = true;
  } else if (scheme != "tcp" && scheme != "mqtt") {
    throw bad("the scheme must be tcp:// or ssl://");
  }
  std::string rest = uri.substr(scheme_end + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.rfind('[', 0) == 0) {
    auto close = rest.find(']');
    if (close == std::string::npos) throw bad("an unclosed [");
    out.host = rest.substr(1, close - 1);
    rest.erase(0, close + 1);
    if (!rest.empty() && rest[0] != ':') throw bad("text after the host");
    if (!rest.empty()) out.port = rest.substr(1);
  } else {
    auto colon = rest.rfind(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos) out.port = rest.substr(colon + 1);
  }
  if (out.host.empty() || out.host.find_first_of("/@ ?#") != std::string::npos) throw bad("no usable host");
  if (out.port.empty()) out.port = out.tls ? "8883" : "1883";
  if (out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(out.port) < 1 || std::stoi(out.port) > 65535) {
    throw bad("the port must be a number from 1 to 65535");
  }
  return out;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One connection and its buffers: handlers hold it alive, so a buffer outlives every operation that uses it.
struct Connection {
  Connection(asio::io_context& io, asio::ssl::context& tls) : stream(io, tls) {}
  TlsStream stream;  // plain connections use its socket alone
  std::array<char, 64 * 1024> chunk{};
  std::string in;
  std::size_t in_used = 0;
  std::size_t skip = 0;  // bytes of a too large PUBLISH still to be discarded
  std::string out_next;  // packets waiting for the write in progress
  std::string out_busy;  // the write in progress
  bool writing = false;
  bool close_when_written = false;
  Clock::time_point last_received = Clock::now();
};

// An answer (or the status) on its way: waiting, or sent and not yet acknowledged (in flight).
struct Outgoing {
  std::string topic, payload, correlation;
  bool retain = false;
  std::function<void()> delivered;
  std::uint16_t packet_id = 0;
  std::size_t size() const { return topic.size() + payload.size() + correlation.size(); }
};

// A QoS 1 request taken from the broker and not acknowledged yet.
struct Incoming {
  std::uint64_t seq = 0;
  std::uint16_t packet_id = 0;
  bool acked = false;
  bool earlier = false;      // came on a connection that is gone; the broker kept our session and sends it again
  bool redelivered = false;  // that repeat arrived (and was not handed over twice)
};

enum class Phase { down, connecting, subscribing, ready };

}  // namespace

struct Transport::Impl {
  Impl(const MqttConfig& config, std::vector<std::string> filters, Handler handler)
      : config(config),
        filters(std::move(filters)),
        handler(std::move(handler)),
        address(parse_broker(config.broker)),
        version(config.mqtt_version == 5 ? wire::v5 : wire::v311),
        max_packet(config.max_payload_bytes + 128 * 1024),
        status_topic(config.response_topic + "/server/" + config.client_id),
        tls_context(asio::ssl::context::tls_client),
        resolver(io),
        timer(io),
        ping_timer(io),
        work(asio::make_work_guard(io)) {
    if (address.tls) {
      try {
        tls_context.set_verify_mode(asio::ssl::verify_peer);
        if (config.ca_file.empty()) {
          tls_context.set_default_verify_paths();
        } else {
          tls_context.load_verify_file(config.ca_file);
        }
        if (!config.cert_file.empty()) tls_context.use_certificate_chain_file(config.cert_file);
        if (!config.key_file.empty()) tls_context.use_private_key_file(config.key_file, asio::ssl::context::pem);
      } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot set up TLS for '" + config.broker + "': " + e.what());
      }
    }
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    io.stop();
    if (thread.joinable()) thread.join();
  }

  std::string status_payload(const char* state) const {
    return nlohmann::json{{"status", state},
                          {"client_id", config.client_id},
                          {"timestamp", format_local_time(Invocation::Clock::now())}}
        .dump();
  }

  // --- connecting ---

  void start_connect() {
    phase = Phase::connecting;
    auto c = conn = std::make_shared<Connection>(io, tls_context);
    arm(timer, std::chrono::seconds(10), [this, c] {
      if (c == conn && phase != Phase::ready) fail(c, "no answer from the broker within 10 s");
    });
    resolver.async_resolve(address.host, address.port, [this, c](auto ec, tcp::resolver::results_type found) {
      if (c != conn) return;
      if (ec) return fail(c, ec.message());
      asio::async_connect(c->stream.next_layer(), found, [this, c](auto ec, const tcp::endpoint&) {
        if (c != conn) return;
        if (ec) return fail(c, ec.message());
        boost::system::error_code ignored;
        c->stream.next_layer().set_option(tcp::no_delay(true), ignored);  // answers are small and latency counts
        if (!address.tls) return send_connect(c);
        if (!is_ip_literal(address.host)) SSL_set_tlsext_host_name(c->stream.native_handle(), address.host.c_str());
        c->stream.set_verify_callback(asio::ssl::host_name_verification(address.host));
        c->stream.async_handshake(asio::ssl::stream_base::client, [this, c](auto ec) {
          if (c != conn) return;
          if (ec) return fail(c, "TLS: " + ec.message());
          send_connect(c);
        });
      });
    });
  }

  void send_connect(const std::shared_ptr<Connection>& c) {
    wire::ConnectOptions options;
    options.version = version;
    options.client_id = config.client_id;
    options.clean_start = false;  // a persistent session: the broker queues QoS 1 requests while we are away
    options.keep_alive_s = static_cast<std::uint16_t>(std::min<long>(config.keep_alive.count(), 65535));
    options.session_expiry_s = static_cast<std::uint32_t>(config.session_expiry.count());
    options.receive_maximum = config.receive_maximum;
    options.will = wire::Will{status_topic, status_payload("offline"), true};
    options.username = config.username;
    options.password = config.password;
    wire::put_connect(c->out_next, options);
    flush(c);
    read(c);
  }

  // Closes a connection that failed and schedules the next attempt.
  void fail(const std::shared_ptr<Connection>& c, const std::string& reason) {
    if (c != conn) return;
    boost::system::error_code ignored;
    c->stream.next_layer().close(ignored);
    conn.reset();
    bool was_ready = phase == Phase::ready;
    phase = Phase::down;
    ping_timer.cancel();
    for (auto& taken : incoming) taken.earlier = true;
    if (stopping) return;
    auto wait = backoff;
    if (was_ready) {
      spdlog::warn("lost the broker ({}); reconnecting", reason);
      wait = std::chrono::milliseconds(250);
    } else {
      spdlog::warn("cannot connect to {}: {}; retrying in {} ms", config.broker, reason, wait.count());
      backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
    }
    arm(timer, wait, [this] {
      if (!conn && !stopping) start_connect();
    });
  }

  // --- reading ---

  void read(const std::shared_ptr<Connection>& c) {
    auto on_read = [this, c](const boost::system::error_code& ec, std::size_t count) {
      if (c != conn) return;
      if (ec) return fail(c, ec == asio::error::eof ? "the broker closed the connection" : ec.message());
      c->last_received = Clock::now();
      c->in.append(c->chunk.data(), count);
      try {
        take_packets(c);
      } catch (const wire::ProtocolError& e) {
        return fail(c, std::string("protocol error: ") + e.what());
      }
      if (c == conn) read(c);
    };
    if (address.tls) {
      c->stream.async_read_some(asio::buffer(c->chunk), on_read);
    } else {
      c->stream.next_layer().async_read_some(asio::buffer(c->chunk), on_read);
    }
  }

  void take_packets(const std::shared_ptr<Connection>& c) {
    while (c == conn) {
      std::string_view available(c->in);
      available.remove_prefix(c->in_used);
      if (c->skip > 0) {
        auto count = std::min(c->skip, available.size());
        c->in_used += count;
        c->skip -= count;
        if (c->skip > 0) break;
        continue;
      }
      auto header = wire::read_fixed_header(available);
      if (!header) break;
      if (header->remaining > max_packet) {
        // Too large to keep: read its topic and packet id, skip the rest, and let the handler refuse it.
        if (header->type() != wire::publish) throw wire::ProtocolError("an oversized packet");
        auto head = available.substr(header->size, header->remaining);
        auto publish = wire::decode_publish_head(header->first, head);
        if (!publish) break;
        c->in_used += header->size;
        c->skip = header->remaining;
        Message message;
        message.topic = std::move(publish->topic);
        message.retained = (header->first & 0x01) != 0;
        message.too_large = true;
        deliver(std::move(message), publish->qos, publish->packet_id, (header->first & 0x08) != 0);
        continue;
      }
      if (available.size() < header->size + header->remaining) break;
      auto body = available.substr(header->size, header->remaining);
      c->in_used += header->size + header->remaining;
      on_packet(c, wire::decode(header->first, body, version));
    }
    if (c->in_used == c->in.size()) {
      c->in.clear();
      c->in_used = 0;
    } else if (c->in_used > c->chunk.size()) {
      c->in.erase(0, c->in_used);
      c->in_used = 0;
    }
  }

  void on_packet(const std::shared_ptr<Connection>& c, wire::Packet packet) {
    if (auto* ack = std::get_if<wire::ConnAck>(&packet)) return on_connack(c, *ack);
    if (phase == Phase::connecting) throw wire::ProtocolError("a packet before CONNACK");
    if (auto* message = std::get_if<wire::Publish>(&packet)) {
      Message out;
      out.topic = std::move(message->topic);
      out.payload = std::move(message->payload);
      out.retained = message->retain;
      out.reply = ReplyTo{std::move(message->response_topic), std::move(message->correlation)};
      out.traceparent = std::move(message->traceparent);
      return deliver(std::move(out), message->qos, message->packet_id, message->dup);
    }
    if (auto* ack = std::get_if<wire::PubAck>(&packet)) return on_puback(ack->packet_id);
    if (auto* ack = std::get_if<wire::SubAck>(&packet)) return on_suback(c, *ack);
    if (auto* bye = std::get_if<wire::Disconnect>(&packet)) {
      return fail(c, "the broker disconnected us (reason " + std::to_string(bye->code) +
                         (bye->reason.empty() ? "" : ": " + bye->reason) + ")");
    }
  }

  void on_connack(const std::shared_ptr<Connection>& c, const wire::ConnAck& ack) {
    if (phase != Phase::connecting) throw wire::ProtocolError("a second CONNACK");
    if (ack.code != 0) {
      return fail(c, "the broker refused the connection (code " + std::to_string(ack.code) +
                         (ack.reason.empty() ? "" : ": " + ack.reason) + ")");
    }
    if (!ack.session_present) incoming.clear();  // the broker forgot them: it will not send them again
    outbound_window = std::min<std::size_t>(ack.receive_maximum, max_outbound_window);
    keep_alive = ack.server_keep_alive ? std::chrono::seconds(*ack.server_keep_alive) : config.keep_alive;
    if (keep_alive.count() > 0) ping(c);
    send_acks();  // requests taken before the connection broke and committed since
    subscribe(c);
  }

  // Subscribing again is harmless when the broker kept our session, and needed when it did not.
  void subscribe(const std::shared_ptr<Connection>& c) {
    phase = Phase::subscribing;
    if (subscribe_id != 0) release_id(subscribe_id);
    subscribe_id = allocate_id();
    wire::put_subscribe(c->out_next, version, subscribe_id, filters);
    flush(c);
  }

  void on_suback(const std::shared_ptr<Connection>& c, const wire::SubAck& ack) {
    if (ack.packet_id != subscribe_id || phase != Phase::subscribing) return;
    for (std::size_t i = 0; i < ack.codes.size(); ++i) {
      if (ack.codes[i] >= 0x80) {
        spdlog::error("the broker refused our subscription to {} (code {}); trying again in a second",
                      i < filters.size() ? filters[i] : "?", ack.codes[i]);
        return arm(timer, std::chrono::seconds(1), [this, c] {
          if (c == conn && phase == Phase::subscribing) subscribe(c);
        });
      }
    }
    release_id(subscribe_id);
    subscribe_id = 0;
    timer.cancel();
    phase = Phase::ready;
    backoff = std::chrono::milliseconds(1000);
    if (ever_ready) spdlog::info("reconnected to {}", config.broker);
    // Only now what waited: first what the broker had not acknowledged (sent again, flagged as a repeat), then
    // our status, then the answers made while it was away, oldest first.
    for (auto& sent : inflight) {
      wire::put_publish(c->out_next, version, sent.topic, sent.payload, sent.packet_id, sent.retain, true,
                        sent.correlation);
    }
    waiting.push_front(Outgoing{status_topic, status_payload("online"), {}, true, {}, 0});
    waiting_bytes += waiting.front().size();
    pump();
    {
      std::lock_guard lock(mutex);
      ever_ready = true;
    }
    ready_cv.notify_all();
  }

  // Keep-alive: a PINGREQ every three quarters of the interval; silence for one and a half intervals means the
  // connection is dead even if TCP has not noticed.
  void ping(const std::shared_ptr<Connection>& c) {
    auto interval = std::max<std::chrono::milliseconds>(keep_alive * 3 / 4, std::chrono::milliseconds(500));
    arm(ping_timer, interval, [this, c] {
      if (c != conn) return;
      if (Clock::now() - c->last_received > keep_alive * 3 / 2) return fail(c, "the broker stopped answering");
      wire::put_pingreq(c->out_next);
      flush(c);
      ping(c);
    });
  }

  // --- requests from the broker ---

  void deliver(Message message, std::uint8_t qos, std::uint16_t packet_id, bool dup) {
    if (qos == 0) return handler(std::move(message), [] {});
    if (qos == 2) throw wire::ProtocolError("a QoS 2 PUBLISH on a QoS 1 subscription");
    if (dup) {
      for (auto& taken : incoming) {
        if (taken.earlier && !taken.redelivered && taken.packet_id == packet_id) {
          taken.redelivered = true;  // already handed over: its acknowledgement will answer this repeat
          return;
        }
      }
    }
    auto seq = next_seq++;
    incoming.push_back(Incoming{seq, packet_id});
    handler(std::move(message), [this, seq] { asio::post(io, [this, seq] { acknowledge(seq); }); });
  }

  void acknowledge(std::uint64_t seq) {
    if (incoming.empty() || seq < incoming.front().seq || seq - incoming.front().seq >= incoming.size()) return;
    incoming[seq - incoming.front().seq].acked = true;
    send_acks();
  }

  // PUBACKs in the order the requests came, as MQTT asks: each waits for the ones before it.
  void send_acks() {
    if (!conn || phase == Phase::connecting || phase == Phase::down) return;
    bool any = false;
    while (!incoming.empty() && incoming.front().acked) {
      wire::put_puback(conn->out_next, incoming.front().packet_id);
      incoming.pop_front();
      any = true;
    }
    if (any) flush(conn);
  }

  // --- answers to the broker ---

  void keep(Outgoing item) {
    waiting_bytes += item.size();
    waiting.push_back(std::move(item));
    while (waiting_bytes > config.max_buffered_bytes && waiting.size() > 1) {
      waiting_bytes -= waiting.front().size();
      waiting.pop_front();
      if (dropped++ % 1000 == 0) {
        spdlog::warn("the broker is away and {} bytes of answers wait: dropping the oldest ({} so far; their "
                     "records are in the logs)", config.max_buffered_bytes, dropped);
      }
    }
    pump();
  }

  // Sends what waits, while the broker's window for unacknowledged publications has room.
  void pump() {
    if (phase == Phase::ready) {
      while (!waiting.empty() && inflight.size() < outbound_window) {
        Outgoing item = std::move(waiting.front());
        waiting.pop_front();
        waiting_bytes -= item.size();
        try {
          item.packet_id = allocate_id();
          wire::put_publish(conn->out_next, version, item.topic, item.payload, item.packet_id, item.retain, false,
                            item.correlation);
        } catch (const std::length_error& e) {
          release_id(item.packet_id);
          spdlog::error("cannot publish to {}: {}", item.topic.substr(0, 200), e.what());
          continue;
        }
        inflight.push_back(std::move(item));
      }
      flush(conn);
    }
    unsent = waiting.size() + inflight.size();
  }

  void on_puback(std::uint16_t packet_id) {
    for (auto it = inflight.begin(); it != inflight.end(); ++it) {
      if (it->packet_id != packet_id) continue;
      auto delivered = std::move(it->delivered);
      release_id(packet_id);
      inflight.erase(it);
      if (delivered) delivered();
      break;
    }
    pump();
  }

  std::uint16_t allocate_id() {
    do {
      next_id = static_cast<std::uint16_t>(next_id == 65535 ? 1 : next_id + 1);
    } while (id_used[next_id]);
    id_used[next_id] = true;
    return next_id;
  }
  void release_id(std::uint16_t id) { id_used[id] = false; }

  // --- writing ---

  void flush(const std::shared_ptr<Connection>& c) {
    if (!c || c->writing || c->out_next.empty()) return;
    c->writing = true;
    c->out_busy.swap(c->out_next);
    auto on_written = [this, c](const boost::system::error_code& ec, std::size_t) {
      c->writing = false;
      c->out_busy.clear();
      if (c != conn) return;
      if (ec) return fail(c, ec.message());
      if (c->close_when_written && c->out_next.empty()) {
        boost::system::error_code ignored;
        c->stream.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
        if (closed) closed->set_value();
        closed.reset();
        return;
      }
      flush(c);
    };
    if (address.tls) {
      asio::async_write(c->stream, asio::buffer(c->out_busy), on_written);
    } else {
      asio::async_write(c->stream.next_layer(), asio::buffer(c->out_busy), on_written);
    }
  }

  template <class Duration, class Then>
  static void arm(asio::steady_timer& which, Duration after, Then then) {
    which.expires_after(after);
    which.async_wait([then = std::move(then)](const boost::system::error_code& ec) {
      if (!ec) then();
    });
  }

  const MqttConfig& config;
  std::vector<std::string> filters;
  Handler handler;
  BrokerAddress address;
  int version;
  std::size_t max_packet;
  std::string status_topic;

  static constexpr std::size_t max_outbound_window = 1000;

  asio::io_context io;
  asio::ssl::context tls_context;
  tcp::resolver resolver;
  asio::steady_timer timer;       // connect timeout, reconnect delay, subscription retry
  asio::steady_timer ping_timer;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;

  // The transport's thread only.
  std::shared_ptr<Connection> conn;
  Phase phase = Phase::down;
  std::chrono::milliseconds backoff{1000};
  std::chrono::seconds keep_alive{30};
  std::size_t outbound_window = max_outbound_window;
  std::deque<Incoming> incoming;
  std::uint64_t next_seq = 1;
  std::deque<Outgoing> waiting;
  std::size_t waiting_bytes = 0;
  std::deque<Outgoing> inflight;
  std::vector<bool> id_used = std::vector<bool>(65536, false);
  std::uint16_t next_id = 0;
  std::uint16_t subscribe_id = 0;
  std::uint64_t dropped = 0;
  bool stopping = false;
  std::shared_ptr<std::promise<void>> closed;

  std::atomic<std::size_t> unsent{0};  // waiting + in flight, for disconnect()
  std::mutex mutex;
  std::condition_variable ready_cv;
  bool ever_ready = false;
};

Transport::Transport(const MqttConfig& config, std::vector<std::string> filters, Handler handler)
    : impl_(std::make_unique<Impl>(config, std::move(filters), std::move(handler))) {}

Transport::~Transport() = default;

bool Transport::connect(const std::function<bool()>& stop_requested) {
  auto& impl = *impl_;
  asio::post(impl.io, [&impl] { impl.start_connect(); });
  std::unique_lock lock(impl.mutex);
  while (!impl.ready_cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return impl.ever_ready; })) {
    if (stop_requested()) return false;
  }
  std::fprintf(stderr, "faas-mqtt: connected to %s\n", impl.config.broker.c_str());
  std::string listed;
  for (const auto& filter : impl.filters) listed += (listed.empty() ? "" : ", ") + filter;
  spdlog::info("subscribed to {}; status on {}", listed, impl.status_topic);
  return true;
}

void Transport::publish(const std::string& topic, std::string payload, const ReplyTo& reply,
                        std::function<void()> delivered) {
  asio::post(impl_->io, [&impl = *impl_, item = Outgoing{topic, std::move(payload), reply.correlation, false,
                                                         std::move(delivered), 0}]() mutable {
    impl.keep(std::move(item));
  });
}

void Transport::disconnect(std::chrono::milliseconds grace) {
  auto& impl = *impl_;
  auto deadline = Clock::now() + grace;
  while (impl.unsent.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (auto left = impl.unsent.load()) spdlog::warn("{} answers not acknowledged by the broker at exit", left);

  // The offline status (the will would say so too, but only after the broker notices), then DISCONNECT.
  auto offline = std::make_shared<std::promise<void>>();
  asio::post(impl.io, [&impl, offline] {
    if (impl.phase != Phase::ready) return offline->set_value();
    impl.keep(Outgoing{impl.status_topic, impl.status_payload("offline"), {}, true,
                       [offline] { offline->set_value(); }, 0});
  });
  offline->get_future().wait_for(std::chrono::seconds(2));
  auto closed = std::make_shared<std::promise<void>>();
  asio::post(impl.io, [&impl, closed] {
    impl.stopping = true;
    impl.timer.cancel();
    impl.ping_timer.cancel();
    if (!impl.conn || impl.phase == Phase::connecting || impl.phase == Phase::down) return closed->set_value();
    impl.closed = closed;
    wire::put_disconnect(impl.conn->out_next);  // a normal disconnection: the broker drops our will
    impl.conn->close_when_written = true;
    impl.flush(impl.conn);
  });
  closed->get_future().wait_for(std::chrono::seconds(1));
  impl.io.stop();
  if (impl.thread.joinable()) impl.thread.join();
}

}  // namespace faas::mqtt
