// server.cpp — listener and per-connection sessions on Boost.Beast (after Beast's advanced server example).
#include "server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace faas::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
// An event stream quiet this long gets a comment line: proxies keep it open, and a client gone is noticed.
constexpr std::chrono::seconds heartbeat_interval{15};

class Session;

// What every session shares with the server.
struct Shared {
  Shared(const HttpConfig& config, Metrics& metrics) : config(config), metrics(metrics) {}

  const HttpConfig& config;
  Metrics& metrics;
  Api* api = nullptr;
  std::atomic<bool> draining{false};
  std::atomic<std::int64_t> unanswered{0};  // requests read and not yet answered
  std::mutex drained_mutex;
  std::condition_variable drained;

  void answered() {
    if (unanswered.fetch_sub(1) == 1 && draining.load()) {
      std::lock_guard lock(drained_mutex);
      drained.notify_all();
    }
  }

  // Open connections by peer address, and those that have not completed a request yet, oldest first: the ones
  // closed to make room when a limit is reached.
  std::mutex connections_mutex;
  std::unordered_map<std::string, std::size_t> per_address;
  std::deque<std::weak_ptr<Session>> unproven;
};

// Whether the request's framing is one this server reads the same way as any proxy in front of it; the reason
// when not (RFC 9112 §3.2, §6.1).
std::optional<std::pair<unsigned, std::string>> framing_problem(const bhttp::request<bhttp::string_body>& request) {
  auto hosts = request.count(bhttp::field::host);
  if (hosts > 1) return std::pair{400u, std::string("more than one Host header")};
  if (hosts == 0 && request.version() >= 11) {
    return std::pair{400u, std::string("an HTTP/1.1 request needs a Host header")};
  }
  auto codings = request.count(bhttp::field::transfer_encoding);
  if (codings == 0) return std::nullopt;
  if (codings > 1) return std::pair{400u, std::string("more than one Transfer-Encoding header")};
  // A list of codings; only "chunked" is understood, and it must come last (anything else would leave the body's
  // end to guesswork).
  std::vector<std::string_view> list;
  for (auto item : beast::http::token_list(request[bhttp::field::transfer_encoding])) list.push_back(item);
  if (list.empty() || !beast::iequals(list.back(), "chunked")) {
    return std::pair{400u, std::string("Transfer-Encoding must end in chunked")};
  }
  if (list.size() > 1) return std::pair{501u, std::string("no transfer coding but chunked is supported")};
  return std::nullopt;
}

// Where the header section in `data` ends (just past "\r\n\r\n"), if it is all there.
std::optional<std::size_t> header_end(std::string_view data) {
  auto found = data.find("\r\n\r\n");
  if (found == std::string_view::npos) return std::nullopt;
  return found + 4;
}

// The request line as it may appear in a log line: printable ASCII only, bounded.
std::string loggable(std::string_view text) {
  if (text.size() <= 256 && std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return std::string(text);
  }
  std::string out;
  for (char c : text.substr(0, 256)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (text.size() > 256) out += "...";
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Shared& shared)
      : stream_(std::move(socket)), deadline_(stream_.get_executor()), heartbeat_(stream_.get_executor()),
        shared_(shared) {
    shared_.metrics.connection_opened();
    beast::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      address_ = remote.address().to_string();
      remote_ = address_ + ":" + std::to_string(remote.port());
    }
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }

  ~Session() {
    shared_.metrics.connection_closed();
    std::lock_guard lock(shared_.connections_mutex);
    auto it = shared_.per_address.find(address_);
    if (it != shared_.per_address.end() && --it->second == 0) shared_.per_address.erase(it);
  }

  // Counts the connection in, making room by closing the oldest connections that have not completed a request
  // when this address or the server is at its limit; refuses it with 503 when there is no such connection.
  void run() {
    std::vector<std::shared_ptr<Session>> evicted;
    // Sessions looked at under the lock are released after it: the last reference going there would run
    // ~Session, which takes the same lock.
    std::vector<std::shared_ptr<Session>> looked_at;
    bool room = true;
    {
      std::lock_guard lock(shared_.connections_mutex);
      auto& unproven = shared_.unproven;
      auto evict_one = [&](const std::string* address) {
        for (auto it = unproven.begin(); it != unproven.end();) {
          auto session = it->lock();
          if (!session || session->proven_.load()) {
            it = unproven.erase(it);  // gone, or no longer a candidate
            if (session) looked_at.push_back(std::move(session));
            continue;
          }
          if (address == nullptr || session->address_ == *address) {
            unproven.erase(it);
            evicted.push_back(std::move(session));
            return true;
          }
          looked_at.push_back(std::move(session));
          ++it;
        }
        return false;
      };
      auto& from_here = shared_.per_address[address_];
      ++from_here;
      if (from_here > shared_.config.max_connections_per_address && !evict_one(&address_)) room = false;
      auto open = static_cast<std::size_t>(shared_.metrics.connections());
      if (room && open > shared_.config.max_connections + evicted.size() && !evict_one(nullptr)) room = false;
      if (room) unproven.push_back(weak_from_this());
      // Keep the list short: connections at its front that finished a request or closed leave it.
      while (!unproven.empty()) {
        auto oldest = unproven.front().lock();
        if (oldest && !oldest->proven_.load()) {
          looked_at.push_back(std::move(oldest));
          break;
        }
        if (oldest) looked_at.push_back(std::move(oldest));
        unproven.pop_front();
      }
    }
    for (auto& session : evicted) {
      asio::dispatch(session->stream_.get_executor(), [session] { session->evict(); });
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), room] {
      if (!room) return self->refuse(503, "too many connections; retry later");
      self->read_request();
    });
  }

 private:
  void evict() {
    if (proven_.load() || closed_) return;  // it completed a request meanwhile: it stays
    close();
  }

  // The header section is read whole before Beast parses it, to refuse obsolete line folding, which Beast would
  // silently join and a proxy in front might read differently.
  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_.config.max_header_bytes));
    parser_->body_limit(shared_.config.max_body_bytes);
    arm_deadline();
    read_header_bytes();
  }

  std::string_view buffered() const {
    return {static_cast<const char*>(buffer_.data().data()), buffer_.size()};
  }

  void read_header_bytes() {
    if (auto end = header_end(buffered())) return on_header_bytes(*end);  // already here (pipelining)
    if (buffer_.size() > shared_.config.max_header_bytes) return refuse(431, "the request headers are too large");
    stream_.async_read_some(buffer_.prepare(8192), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (ec) return self->on_read_error(ec);
      self->read_header_bytes();
    });
  }

  void on_header_bytes(std::size_t size) {
    std::string_view header = buffered().substr(0, size);
    if (size > shared_.config.max_header_bytes) return refuse(431, "the request headers are too large");
    auto line_end = header.find("\r\n");
    for (auto fold = header.find("\r\n", line_end); fold != std::string_view::npos && fold + 4 < size;
         fold = header.find("\r\n", fold + 2)) {
      if (header[fold + 2] == ' ' || header[fold + 2] == '\t') return refuse(400, "obsolete line folding in a header");
    }
    beast::error_code ec;
    auto used = parser_->put(asio::buffer(header.data(), size), ec);
    buffer_.consume(used);
    if (!ec && !parser_->is_header_done()) ec = bhttp::error::partial_message;
    on_header(ec);
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    auto& request = parser_->get();
    if (auto problem = framing_problem(request)) return refuse(problem->first, problem->second);
    const bool upload = request.target().starts_with("/admin/upload");
    const std::size_t limit = upload ? shared_.config.max_upload_bytes : shared_.config.max_body_bytes;
    if (auto length = parser_->content_length(); length && *length > limit) {
      return refuse(413, "the body is larger than " + std::to_string(limit) + " bytes");
    }
    parser_->body_limit(limit);
    if (iequals(request[bhttp::field::expect], "100-continue")) {
      return asio::async_write(stream_, asio::buffer(continue_line.data(), continue_line.size()),
                               [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                 if (ec) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_request(ec); });
  }

  // One timer per connection, re-armed lazily: a request only moves `read_by_`, so a stream of requests costs no
  // timer operations; the timer fires at most once per read_timeout and then checks whether a read is late.
  void arm_deadline() {
    read_by_ = std::chrono::steady_clock::now() +
               (proven_.load() ? shared_.config.read_timeout
                               : std::min(shared_.config.read_timeout, shared_.config.first_request_timeout));
    reading_ = true;
    if (timer_armed_) return;
    timer_armed_ = true;
    deadline_.expires_at(read_by_);
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) { self->on_deadline(ec); });
  }

  void on_deadline(beast::error_code ec) {
    timer_armed_ = false;
    if (ec || !reading_ || closed_) return;
    if (std::chrono::steady_clock::now() < read_by_) {
      timer_armed_ = true;
      deadline_.expires_at(read_by_);
      deadline_.async_wait([self = shared_from_this()](beast::error_code ec) { self->on_deadline(ec); });
      return;
    }
    stream_.socket().cancel();  // the pending read completes with operation_aborted
  }

  void on_read_error(beast::error_code ec) {
    reading_ = false;
    if (ec == bhttp::error::body_limit) return refuse(413, "the body is too large");
    if (ec == bhttp::error::header_limit) return refuse(431, "the request headers are too large");
    if (ec == asio::error::operation_aborted) {
      if (closed_) return;  // evicted
      if ((parser_ && parser_->got_some()) || buffer_.size() > 0) {
        return refuse(408, "the request took too long to arrive");
      }
      return close();  // an idle kept-alive connection
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return refuse(400, "malformed HTTP request: " + ec.message());
    }
    close();  // the peer went away
  }

  void on_request(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    reading_ = false;
    proven_ = true;
    auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    started_ = std::chrono::steady_clock::now();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.content_type = std::string(message[bhttp::field::content_type]);
    request.authorization = std::string(message[bhttp::field::authorization]);
    request.origin = std::string(message[bhttp::field::origin]);
    // Comparing with what this same client sent and had accepted reveals nothing it does not know.
    request.credentials_verified = !verified_authorization_.empty() && request.authorization == verified_authorization_;
    if (!request.credentials_verified) last_authorization_ = request.authorization;
    request.async = iequals(message["X-Faas-Async"], "true");
    request.max_attempts = std::string(message["X-Faas-Max-Attempts"]);
    request.idempotency_key = std::string(message["X-Idempotency-Key"]);
    request.callback_url = std::string(message["X-Callback-Url"]);
    request.last_event_id = std::string(message["Last-Event-ID"]);
    request.traceparent = std::string(message["traceparent"]);
    request.accept = std::string(message[bhttp::field::accept]);
    request.body = std::move(message.body());
    method_ = loggable(request.method);
    target_ = loggable(request.target);
    shared_.unanswered.fetch_add(1);
    shared_.api->handle(std::move(request), [self = shared_from_this()](Response response) {
      asio::post(self->stream_.get_executor(),
                 [self, response = std::move(response)]() mutable { self->write(std::move(response), true); });
    });
  }

  // Answers and closes, for requests the Api never sees.
  void refuse(unsigned status, std::string_view message) {
    keep_alive_ = false;
    linger_ = true;
    started_ = std::chrono::steady_clock::now();
    if (parser_ && parser_->is_header_done()) {
      method_ = loggable(parser_->get().method_string());
      target_ = loggable(parser_->get().target());
    }
    write(error_response(status, message), false);
  }

  void write(Response answer, bool counted) {
    if (answer.credentials_accepted) verified_authorization_ = std::move(last_authorization_);
    if (answer.events && answer.status == 200) {
      return start_events(std::move(answer.events), answer.content_type, counted);
    }
    trace_id_ = std::move(answer.trace_id);
    response_ = {};
    response_.version(11);
    response_.result(answer.status);
    response_.set(bhttp::field::server, "libfaas");
    response_.set(bhttp::field::content_type, answer.content_type);
    if (!answer.allow.empty()) response_.set(bhttp::field::allow, answer.allow);
    if (answer.retry_after_seconds) response_.set(bhttp::field::retry_after, std::to_string(answer.retry_after_seconds));
    if (answer.ask_credentials) response_.set(bhttp::field::www_authenticate, R"(Basic realm="Login Required")");
    if (!answer.location.empty()) response_.set(bhttp::field::location, answer.location);
    if (answer.no_framing) {  // no other site may show the dashboard in a frame (clickjacking)
      response_.set("Content-Security-Policy", "frame-ancestors 'none'");
      response_.set("X-Frame-Options", "DENY");
    }
    response_.body() = std::move(answer.body);
    response_.keep_alive(keep_alive_ && !shared_.draining.load());
    response_.prepare_payload();
    stream_.expires_after(shared_.config.write_timeout);
    bhttp::async_write(stream_, response_, [self = shared_from_this(), counted](beast::error_code ec, std::size_t bytes) {
      self->on_write(ec, bytes, counted);
    });
  }

  void on_write(beast::error_code ec, std::size_t bytes, bool counted) {
    const unsigned status = response_.result_int();
    shared_.metrics.record_response(status);
    if (counted) shared_.answered();
    log_access(status, bytes);
    if (ec) return close();
    if (!response_.keep_alive()) return linger_ ? linger_close() : close();
    stream_.expires_never();
    read_request();
  }

  void log_access(unsigned status, std::size_t bytes) {
    if (!spdlog::should_log(spdlog::level::info)) return;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    if (trace_id_.empty()) {
      spdlog::info("{} \"{} {}\" {} {} {:.3f}ms", remote_, method_, target_, status, bytes, ms);
    } else {
      spdlog::info("{} \"{} {}\" {} {} {:.3f}ms trace={}", remote_, method_, target_, status, bytes, ms, trace_id_);
    }
  }

  // An event stream (events.hpp): the header, then the source's bytes as they come, until the source ends it or
  // the client goes away (a write fails or times out). It is the connection's last response.
  void start_events(std::shared_ptr<EventSource> events, std::string_view content_type, bool counted) {
    events_ = std::move(events);
    trace_id_.clear();  // a previous answer's on this connection
    events_header_ = {};
    events_header_.version(11);
    events_header_.result(bhttp::status::ok);
    events_header_.set(bhttp::field::server, "libfaas");
    events_header_.set(bhttp::field::content_type, content_type);
    events_header_.set(bhttp::field::cache_control, "no-cache");
    events_header_.set("X-Accel-Buffering", "no");  // nginx in front: pass events on at once
    events_header_.keep_alive(false);               // the body ends when the connection does
    events_serializer_.emplace(events_header_);
    stream_.expires_after(shared_.config.write_timeout);
    bhttp::async_write_header(stream_, *events_serializer_, [self = shared_from_this(), counted](beast::error_code ec,
                                                                                               std::size_t bytes) {
      self->shared_.metrics.record_response(200);
      if (counted) self->shared_.answered();
      self->events_bytes_ = bytes;
      if (ec) return self->end_events();
      std::weak_ptr<Session> weak = self;
      self->events_->start([weak] {
        if (auto session = weak.lock()) {
          asio::post(session->stream_.get_executor(), [session] {
            if (session->events_idle_) session->heartbeat_.cancel();
          });
        }
      });
      self->pump_events();
    });
  }

  void pump_events() {
    if (closed_ || !events_) return;
    bool ended = false;
    events_out_ = events_->take(ended);
    if (!events_out_.empty()) return write_events();
    if (ended) return end_events();
    stream_.expires_never();
    events_idle_ = true;
    heartbeat_.expires_after(heartbeat_interval);
    heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
      self->events_idle_ = false;
      if (!ec && !self->closed_ && !self->events_->heartbeat().empty()) {
        self->events_out_ = self->events_->heartbeat();
        return self->write_events();
      }
      self->pump_events();  // woken: something to take
    });
  }

  void write_events() {
    stream_.expires_after(shared_.config.write_timeout);
    asio::async_write(stream_, asio::buffer(events_out_), [self = shared_from_this()](beast::error_code ec,
                                                                                     std::size_t bytes) {
      self->events_bytes_ += bytes;
      if (ec) return self->end_events();
      self->pump_events();
    });
  }

  void end_events() {
    if (!events_) return;
    events_.reset();
    log_access(200, events_bytes_);
    close();
  }

  // After refusing a request whose body may still be arriving: stop sending, then read and drop what the client
  // still sends for a moment, so that closing does not reset the connection before it has read our answer.
  void linger_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    discard();
  }

  void discard() {
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->discard();
    });
  }

  void close() {
    closed_ = true;
    deadline_.cancel();
    heartbeat_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  asio::steady_timer deadline_;
  asio::steady_timer heartbeat_;  // an event stream waits on it while quiet
  std::chrono::steady_clock::time_point read_by_;
  bool reading_ = false;      // a request is being read, so read_by_ applies
  bool timer_armed_ = false;
  bool closed_ = false;
  Shared& shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  // An event stream's state, when the connection carries one.
  std::shared_ptr<EventSource> events_;
  bhttp::response<bhttp::empty_body> events_header_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> events_serializer_;
  std::string events_out_;
  std::size_t events_bytes_ = 0;
  bool events_idle_ = false;      // heartbeat_ waits: cancel it to wake the stream
  bool keep_alive_ = false;
  std::string verified_authorization_;  // an Authorization header accepted on this connection
  std::string last_authorization_;      // the header of the request being answered, until it is accepted
  bool linger_ = false;
  std::array<char, 16 * 1024> scratch_;
  std::string address_ = "?";  // the peer's IP address, for the per-address limit
  std::string remote_ = "?";
  std::atomic<bool> proven_{false};  // completed a request: never closed to make room
  std::string method_ = "-", target_ = "-";  // printable, for the access log
  std::string trace_id_;                     // of the invocation answered, for the access log
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

struct Server::Impl {
  Impl(const HttpConfig& config, Metrics& metrics)
      : shared(config, metrics),
        acceptor(asio::make_strand(io)),
        retry_accept(acceptor.get_executor()),
        blocking(config.blocking_threads),
        signals(io, SIGINT, SIGTERM) {}

  void accept() {
    // With one I/O thread every handler already runs in sequence, and a strand would only add cost.
    auto executor = shared.config.io_threads > 1 ? asio::any_io_executor(asio::make_strand(io)) : io.get_executor();
    acceptor.async_accept(executor, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // Out of descriptors, most likely: wait a little rather than spin.
        spdlog::warn("accept failed: {}", ec.message());
        retry_accept.expires_after(std::chrono::milliseconds(100));
        return retry_accept.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) accept();
        });
      }
      std::make_shared<Session>(std::move(socket), shared)->run();
      accept();
    });
  }

  asio::io_context io;
  // Keeps run() going while no socket operation is pending, e.g. when every connection waits for the engine.
  asio::executor_work_guard<asio::io_context::executor_type> keep_running = asio::make_work_guard(io);
  Shared shared;
  tcp::acceptor acceptor;
  asio::steady_timer retry_accept;
  asio::thread_pool blocking;
  asio::signal_set signals;
  std::vector<std::thread> threads;
  bool stopped = false;
};

Server::Server(const HttpConfig& config, Metrics& metrics) : impl_(std::make_unique<Impl>(config, metrics)) {
  beast::error_code ec;
  auto address = asio::ip::make_address(config.host, ec);
  if (ec) throw std::runtime_error("invalid --host '" + config.host + "': " + ec.message());
  tcp::endpoint endpoint(address, config.port);
  auto& acceptor = impl_->acceptor;
  if (acceptor.open(endpoint.protocol(), ec); ec) throw std::runtime_error("cannot open a socket: " + ec.message());
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (acceptor.bind(endpoint, ec); ec) {
    throw std::runtime_error("cannot listen on " + config.host + ":" + std::to_string(config.port) + ": " + ec.message());
  }
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    throw std::runtime_error("cannot listen: " + ec.message());
  }
}

Server::~Server() { stop(); }

std::string Server::local_address() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

Api::Runner Server::blocking_runner() {
  return [this](std::function<void()> task) { asio::post(impl_->blocking, std::move(task)); };
}

void Server::start(Api& api) {
  impl_->shared.api = &api;
  impl_->accept();
  for (unsigned i = 0; i < std::max(1u, impl_->shared.config.io_threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
}

void Server::wait_for_signal() {
  std::promise<int> caught;
  impl_->signals.async_wait([&caught](beast::error_code ec, int signal) { caught.set_value(ec ? 0 : signal); });
  int signal = caught.get_future().get();
  spdlog::info("caught signal {}; shutting down", signal);
}

void Server::stop_accepting() {
  impl_->shared.draining = true;
  std::promise<void> closed;
  asio::dispatch(impl_->acceptor.get_executor(), [this, &closed] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->retry_accept.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
}

std::size_t Server::drain(std::chrono::milliseconds grace) {
  auto& shared = impl_->shared;
  std::unique_lock lock(shared.drained_mutex);
  shared.drained.wait_for(lock, grace, [&shared] { return shared.unanswered.load() <= 0; });
  return static_cast<std::size_t>(std::max<std::int64_t>(0, shared.unanswered.load()));
}

void Server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->blocking.join();
  impl_->keep_running.reset();
  impl_->io.stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
}

}  // namespace faas::http
