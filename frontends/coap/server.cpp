// server.cpp — libcoap set-up, routing, authentication, separate answers and Observe.
#include "server.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include <boost/asio/post.hpp>
#include <coap3/coap.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "upload.hpp"

namespace faas::coap {
namespace {

using nlohmann::json;

Answer error_answer(unsigned code, std::string_view message, std::string_view error_code = {}, int max_age = -1) {
  json body{{"status", "error"}, {"message", message}};
  if (!error_code.empty()) body["code"] = error_code;
  return Answer{code, body.dump(-1, ' ', false, json::error_handler_t::replace), max_age};
}

// The one mapping of the engine's error codes to CoAP response codes.
Answer from_error(const Error& error) {
  switch (error.code()) {
    case ErrorCode::invalid_name:
    case ErrorCode::invalid_input:
      return error_answer(400, error.what(), to_string(error.code()));
    case ErrorCode::not_found:
      return error_answer(404, error.what(), to_string(error.code()));
    case ErrorCode::overloaded:
      return error_answer(503, error.what(), to_string(error.code()), 1);
    case ErrorCode::shutting_down:
    case ErrorCode::store_unavailable:
      return error_answer(503, error.what(), to_string(error.code()), 5);
    case ErrorCode::build_failed:
    case ErrorCode::internal:
      break;
  }
  return error_answer(500, error.what(), to_string(error.code()));
}

Answer busy_token() {
  return error_answer(503, "a request with this token is still running; use a new token", "overloaded", 1);
}

Answer too_large(std::size_t limit) {
  return error_answer(413, "the body is larger than " + std::to_string(limit) + " bytes");
}

Answer unauthorized() {
  return error_answer(401, "this needs the admin's key: use coaps:// with the pre-shared key");
}

// Who sent a request, as a key: its protocol and address, in binary (the same address may talk plain UDP and
// DTLS: two peers).
std::string peer_of(coap_session_t* session) {
  const coap_address_t* remote = coap_session_get_addr_remote(session);
  std::string key(1, coap_session_get_proto(session) == COAP_PROTO_DTLS ? 'd' : 'u');
  const auto& address = remote->addr;
  if (address.sa.sa_family == AF_INET6) {
    key.append(reinterpret_cast<const char*>(&address.sin6.sin6_port), sizeof address.sin6.sin6_port);
    key.append(reinterpret_cast<const char*>(&address.sin6.sin6_addr), sizeof address.sin6.sin6_addr);
  } else {
    key.append(reinterpret_cast<const char*>(&address.sin.sin_port), sizeof address.sin.sin_port);
    key.append(reinterpret_cast<const char*>(&address.sin.sin_addr), sizeof address.sin.sin_addr);
  }
  return key;
}

std::string text_of(const coap_string_t* s) {
  return s == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(s->s), s->length);
}

// The value of `key` in a query string such as "limit=5&x".
std::optional<std::string> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto equals = pair.find('=');
    if (pair.substr(0, equals) == key) {
      return equals == std::string_view::npos ? std::string() : std::string(pair.substr(equals + 1));
    }
  }
  return std::nullopt;
}

std::size_t parse_limit(const std::string& query, std::size_t fallback) {
  auto text = query_value(query, "limit");
  if (!text) return fallback;
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) {
    throw Error(ErrorCode::invalid_input, "limit must be a non-negative integer");
  }
  return value;
}

bool has_observe(const coap_pdu_t* request) {
  coap_opt_iterator_t options;
  return coap_check_option(request, COAP_OPTION_OBSERVE, &options) != nullptr;
}

// Sets the response's code and body (block-wise when larger than the session allows). libcoap may send blocks
// after the handler returned: it gets its own copy of the body, released when it is done.
void respond(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
             const coap_string_t* query, coap_pdu_t* response, const Answer& reply) {
  coap_pdu_set_code(response, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(reply.code)));
  if (reply.body.empty()) return;
  auto* body = new std::string(reply.body);
  coap_add_data_large_response(
      resource, session, request, response, query, COAP_MEDIATYPE_APPLICATION_JSON, reply.max_age, 0, body->size(),
      reinterpret_cast<const uint8_t*>(body->data()),
      [](coap_session_t*, void* text) { delete static_cast<std::string*>(text); }, body);
}

}  // namespace

// What a separately answered request waits with, as libcoap's async app data.
struct Server::Pending {
  std::string peer;
  coap_mid_t message_id;
  bool counted;                  // an invocation, counted in the peer's calls running
  std::optional<Answer> answer;  // set by the loop once the work is done; then the async is triggered
};

Server::Server(Engine& engine, const CoapConfig& config)
    : engine_(engine), config_(config), exchanges_(config.exchanges), blocking_(config.blocking_threads) {
  coap_startup();
  // libcoap's own messages go to our log at debug level: what matters reaches us as return values, and hostile
  // datagrams would otherwise fill the log with its warnings.
  coap_set_log_handler([](coap_log_t, const char* message) {
    std::string_view text(message);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    spdlog::debug("libcoap: {}", text);
  });
  coap_set_log_level(LOG_WARNING);
  coap_dtls_set_log_level(LOG_WARNING);
  context_ = coap_new_context(nullptr);
  if (context_ == nullptr) throw std::runtime_error("cannot create the CoAP context");
  coap_set_app_data(context_, this);
  coap_context_set_block_mode(context_, COAP_BLOCK_USE_LIBCOAP);
  coap_context_set_max_idle_sessions(context_, 4096);
  coap_context_set_max_handshake_sessions(context_, 256);

  if (coap_dtls_is_supported()) {
    coap_dtls_spsk_t psk{};
    psk.version = COAP_DTLS_SPSK_SETUP_VERSION;
    psk.validate_id_call_back = [](coap_bin_const_t* identity, coap_session_t* session,
                                   void*) -> const coap_bin_const_t* {
      auto* self = static_cast<Server*>(coap_get_app_data(coap_session_get_context(session)));
      const auto& expected = self->config_.psk_identity;
      if (identity == nullptr || identity->length != expected.size() ||
          std::memcmp(identity->s, expected.data(), expected.size()) != 0) {
        return nullptr;  // an unknown identity: the handshake fails
      }
      static thread_local coap_bin_const_t key;
      key.s = reinterpret_cast<const uint8_t*>(self->config_.psk_key.data());
      key.length = self->config_.psk_key.size();
      return &key;
    };
    psk.psk_info.hint.s = reinterpret_cast<const uint8_t*>(config.psk_identity.data());
    psk.psk_info.hint.length = 0;  // no hint: the client must know the identity
    psk.psk_info.key.s = reinterpret_cast<const uint8_t*>(config.psk_key.data());
    psk.psk_info.key.length = config.psk_key.size();
    if (!coap_context_set_psk2(context_, &psk)) throw std::runtime_error("cannot set the DTLS pre-shared key");
  }

  auto bind = [&](unsigned short port, coap_proto_t proto, std::string& bound) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (::getaddrinfo(config.host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) {
      throw std::runtime_error("cannot use the address " + config.host);
    }
    coap_address_t address;
    coap_address_init(&address);
    address.size = found->ai_addrlen;
    std::memcpy(&address.addr, found->ai_addr, found->ai_addrlen);
    ::freeaddrinfo(found);
    auto* endpoint = coap_new_endpoint(context_, &address, proto);
    if (endpoint == nullptr) {
      throw std::runtime_error("cannot listen on " + config.host + ":" + std::to_string(port) +
                               (proto == COAP_PROTO_DTLS ? " (DTLS)" : " (UDP)"));
    }
    // With port 0 the system chose one; the endpoint's name ("ADDRESS:PORT PROTO") says which.
    std::string name = coap_endpoint_str(endpoint);
    name = name.substr(0, name.find(' '));
    bound = config.host + name.substr(name.rfind(':'));
  };
  bind(config.port, COAP_PROTO_UDP, udp_address_);
  if (!coap_dtls_is_supported()) throw std::runtime_error("this libcoap has no DTLS");
  bind(config.dtls_port, COAP_PROTO_DTLS, dtls_address_);

  unknown_ = coap_resource_unknown_init2(on_request, 0);
  for (auto method : {COAP_REQUEST_GET, COAP_REQUEST_POST, COAP_REQUEST_DELETE, COAP_REQUEST_FETCH}) {
    coap_register_request_handler(unknown_, method, on_request);
  }
  coap_add_resource(context_, unknown_);

  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("cannot create an eventfd");

  // Observe: a resource per function known now, and for each function a record is committed for later.
  for (const auto& info : engine_.list()) {
    auto newest = engine_.logs(info.name, 1);
    observe(info.name, newest.empty() ? std::string() : newest.back());
  }
  alive_->server = this;
  follower_ = engine_.follow(FollowOptions{}, record_waker());
}

std::function<void()> Server::record_waker() {
  return [alive = alive_] {
    std::lock_guard lock(alive->mutex);
    if (alive->server != nullptr) alive->server->post([server = alive->server] { server->records_waiting_ = true; });
  };
}

Server::~Server() {
  {
    std::lock_guard lock(alive_->mutex);  // an engine thread may be about to say records came
    alive_->server = nullptr;
  }
  blocking_.join();
  if (context_ != nullptr) coap_free_context(context_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  coap_cleanup();
}

std::string Server::udp_address() const { return udp_address_; }
std::string Server::dtls_address() const { return dtls_address_; }

void Server::post(std::function<void()> change) {
  bool wake = false;
  {
    std::lock_guard lock(posted_mutex_);
    change();
    wake = !wake_sent_;  // one wake until the loop takes what is posted: no system call per finished call
    wake_sent_ = true;
  }
  if (wake) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
  }
}

void Server::run(const std::function<bool()>& stop) {
  auto next_listing = std::chrono::steady_clock::now();
  const int coap_fd = coap_context_get_coap_fd(context_);
  while (!stop()) {
    // Functions uploaded or deleted through another server on this data dir: their logs become observable.
    if (auto now = std::chrono::steady_clock::now(); now >= next_listing && !listing_.exchange(true)) {
      next_listing = now + std::chrono::seconds(2);
      boost::asio::post(blocking_, [this] {
        std::vector<std::string> names;
        try {
          for (const auto& info : engine_.list()) names.push_back(info.name);
        } catch (const Error& e) {
          spdlog::warn("cannot list the functions: {}", e.what());
          listing_ = false;
          return;
        }
        post([&] { functions_ = std::move(names); });
      });
    }
    if (coap_fd >= 0) {
      // libcoap on epoll: its descriptor and our eventfd in one poll. libcoap's own timers (retransmissions) are
      // second-scale; each wake runs whatever is due.
      coap_io_process(context_, COAP_IO_NO_WAIT);
      pollfd ready[2] = {{coap_fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      ::poll(ready, 2, 100);
      if ((ready[1].revents & POLLIN) == 0) continue;
    } else {
      fd_set readable;
      FD_ZERO(&readable);
      FD_SET(wake_fd_, &readable);
      coap_io_process_with_fds(context_, 100, wake_fd_ + 1, &readable, nullptr, nullptr);
    }
    std::uint64_t count = 0;
    if (::read(wake_fd_, &count, sizeof count) > 0) take_posted();
  }
}

void Server::take_posted() {
  std::vector<std::pair<coap_async_t*, Answer>> finished;
  std::optional<std::vector<std::string>> functions;
  {
    std::lock_guard lock(posted_mutex_);
    finished.swap(finished_);
    functions.swap(functions_);
    wake_sent_ = false;
  }
  if (functions) {
    listing_ = false;
    for (const auto& name : *functions) observe(name, {});
    for (auto it = observed_.begin(); it != observed_.end();) {  // deleted: observers get 4.04 Not Found
      if (std::find(functions->begin(), functions->end(), it->first) == functions->end()) {
        coap_delete_resource(context_, it->second.resource);
        it = observed_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [async, reply] : finished) {
    static_cast<Pending*>(coap_async_get_app_data(async))->answer = std::move(reply);
    coap_async_trigger(async);  // libcoap calls the handler again with the request: it sends the answer
  }
  if (records_waiting_.exchange(false)) {
    std::vector<std::string> changed;
    for (const auto& record : follower_->take()) {
      if (std::find(changed.begin(), changed.end(), record->function) == changed.end()) {
        changed.push_back(record->function);
      }
      observe(record->function, record->json);
    }
    for (const auto& name : changed) coap_resource_notify_observers(observed_[name].resource, nullptr);
    if (follower_->dropped()) {  // it fell behind: follow again; observers get the newest state anyway
      follower_ = engine_.follow(FollowOptions{}, record_waker());
    }
  }
}

void Server::observe(const std::string& function, std::string latest) {
  auto& observed = observed_[function];
  if (observed.resource == nullptr) {
    std::string path = "function/" + function + "/logs";
    auto* uri = coap_new_str_const(reinterpret_cast<const uint8_t*>(path.data()), path.size());
    observed.resource = coap_resource_init(uri, COAP_RESOURCE_FLAGS_RELEASE_URI | COAP_RESOURCE_FLAGS_NOTIFY_CON);
    coap_register_request_handler(observed.resource, COAP_REQUEST_GET, on_logs);
    coap_resource_set_get_observable(observed.resource, 1);
    coap_add_resource(context_, observed.resource);
  }
  if (!latest.empty()) observed.latest = std::move(latest);
}

void Server::on_request(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                        const coap_string_t* query, coap_pdu_t* response) {
  static_cast<Server*>(coap_get_app_data(coap_session_get_context(session)))
      ->handle(resource, session, request, query, response);
}

void Server::on_logs(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                     const coap_string_t* query, coap_pdu_t* response) {
  auto* self = static_cast<Server*>(coap_get_app_data(coap_session_get_context(session)));
  if (!has_observe(request)) return self->handle(resource, session, request, query, response);
  // An observer (registering, or being notified): the newest record.
  const std::string peer = peer_of(session);
  if (coap_session_get_proto(session) != COAP_PROTO_DTLS) {
    return self->answer(resource, session, request, query, response, unauthorized(), peer);
  }
  std::string function;
  if (auto* uri = coap_resource_get_uri_path(resource)) {
    std::string text(reinterpret_cast<const char*>(uri->s), uri->length);  // function/{name}/logs
    function = text.substr(9, text.size() - 9 - 5);
  }
  const auto& latest = self->observed_[function].latest;
  respond(resource, session, request, query, response, Answer{205, latest.empty() ? "null" : latest, -1});
}

void Server::answer(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                    const coap_string_t* query, coap_pdu_t* response, const Answer& reply,
                    const std::string& peer) {
  // Refusals cost nothing to make again (and a challenge must carry its Echo each time): only the rest is kept.
  if (reply.code != 401) {
    exchanges_.remember(peer, static_cast<std::uint16_t>(coap_pdu_get_mid(request)), reply, Exchanges::Clock::now());
  }
  respond(resource, session, request, query, response, reply);
}

std::optional<std::string> Server::take_body(coap_resource_t* resource, coap_session_t* session,
                                             const coap_pdu_t* request, const coap_string_t* query,
                                             coap_pdu_t* response, const std::string& peer, const std::string& path) {
  size_t length = 0, offset = 0, total = 0;
  const uint8_t* data = nullptr;
  coap_get_data_large(request, &length, &data, &offset, &total);
  std::string_view block(reinterpret_cast<const char*>(data), data == nullptr ? 0 : length);
  coap_block_b_t block1{};
  if (!coap_get_block_b(session, request, COAP_OPTION_BLOCK1, &block1)) {
    if (block.size() > config_.max_body_bytes) {
      answer(resource, session, request, query, response, too_large(config_.max_body_bytes), peer);
      return std::nullopt;
    }
    return std::string(block);
  }
  // Transfers are told apart by their Request-Tag (RFC 9175), which libcoap's clients send.
  coap_opt_iterator_t options;
  std::string key = peer + ' ' + path;
  if (coap_opt_t* tag = coap_check_option(request, COAP_OPTION_RTAG, &options)) {
    key.append(" ").append(reinterpret_cast<const char*>(coap_opt_value(tag)), coap_opt_length(tag));
  }
  std::size_t declared = 0;
  if (coap_opt_t* size1 = coap_check_option(request, COAP_OPTION_SIZE1, &options)) {
    declared = coap_decode_var_bytes8(coap_opt_value(size1), coap_opt_length(size1));
  }
  std::string body;
  const std::size_t at = static_cast<std::size_t>(block1.num) * (std::size_t{1} << (block1.szx + 4));
  switch (bodies_.add(peer, key, at, block, block1.m != 0, declared, config_.max_body_bytes,
                      Bodies::Clock::now(), body)) {
    case Bodies::Step::complete:
      return body;
    case Bodies::Step::more: {
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTINUE);
      std::uint8_t value[4];
      coap_add_option(response, COAP_OPTION_BLOCK1,
                      coap_encode_var_safe(value, sizeof value, (block1.num << 4) | (1u << 3) | block1.szx), value);
      return std::nullopt;
    }
    case Bodies::Step::too_large:
      answer(resource, session, request, query, response, too_large(config_.max_body_bytes), peer);
      return std::nullopt;
    case Bodies::Step::out_of_order:
      answer(resource, session, request, query, response,
             error_answer(408, "a block is missing: send the body again from its first block"), peer);
      return std::nullopt;
    case Bodies::Step::busy:
      answer(resource, session, request, query, response,
             error_answer(503, "too many bodies in transfer; retry later", "overloaded", 1), peer);
      return std::nullopt;
  }
  return std::nullopt;
}

bool Server::address_verified(const coap_pdu_t* request, coap_pdu_t* response, const std::string& peer) {
  const auto now = Exchanges::Clock::now();
  coap_opt_iterator_t options;
  coap_opt_t* echo = coap_check_option(request, COAP_OPTION_ECHO, &options);
  std::string_view sent = echo == nullptr ? std::string_view{}
                                          : std::string_view(reinterpret_cast<const char*>(coap_opt_value(echo)),
                                                             coap_opt_length(echo));
  if (verified_.verified(peer, sent, now)) return true;
  auto value = verified_.challenge(peer, now);
  coap_add_option(response, COAP_OPTION_ECHO, value.size(), reinterpret_cast<const uint8_t*>(value.data()));
  return false;
}

bool Server::defer(coap_session_t* session, const coap_pdu_t* request, const std::string& peer, bool counted,
                   const std::function<void(std::function<void(Answer)>)>& start) {
  coap_async_t* async = coap_register_async(session, request, 0);
  if (async == nullptr) return false;  // its token is in use by another request still running
  coap_async_set_app_data(async, new Pending{peer, coap_pdu_get_mid(request), counted, std::nullopt});
  start([this, async](Answer reply) { post([&] { finished_.emplace_back(async, std::move(reply)); }); });
  return true;  // no answer now: libcoap acknowledges a confirmable request with an empty ACK
}

bool Server::offload(coap_session_t* session, const coap_pdu_t* request, const std::string& peer, Work work) {
  return defer(session, request, peer, false, [this, work = std::move(work)](std::function<void(Answer)> finish) {
    boost::asio::post(blocking_, [work, finish = std::move(finish)] {
      try {
        finish(work());
      } catch (const Error& e) {
        finish(from_error(e));
      } catch (const std::exception& e) {
        spdlog::error("request failed: {}", e.what());
        finish(error_answer(500, e.what()));
      }
    });
  });
}

bool Server::invoke(coap_session_t* session, const coap_pdu_t* request, const std::string& peer, std::string name,
                    std::string body) {
  return defer(session, request, peer, true, [&](std::function<void(Answer)> finish) {
    InvokeRequest call;
    call.function = std::move(name);
    try {
      parse_invoke_body(body, call);
    } catch (const Error& e) {
      return finish(from_error(e));
    }
    engine_.invoke_async(std::move(call), [finish = std::move(finish)](Outcome<InvocationResult> outcome) {
      finish(outcome.ok() ? Answer{205, std::move(outcome.value().json), -1} : from_error(outcome.error()));
    });
  });
}

void Server::handle(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                    const coap_string_t* query, coap_pdu_t* response) {
  const std::string peer = peer_of(session);
  const bool admin = coap_session_get_proto(session) == COAP_PROTO_DTLS;  // the handshake proved the key
  // The second call of the handler for a separately answered request: its answer is ready.
  if (coap_async_t* async = coap_find_async(session, coap_pdu_get_token(request))) {
    auto* pending = static_cast<Pending*>(coap_async_get_app_data(async));
    if (pending == nullptr || !pending->answer) return;  // a retransmission while it runs: an empty ACK again
    std::unique_ptr<Pending> done(pending);
    coap_async_set_app_data(async, nullptr);
    if (done->counted) exchanges_.end_call(done->peer);
    // Kept under the original message id, so that a late retransmission gets it too.
    exchanges_.remember(done->peer, static_cast<std::uint16_t>(done->message_id), *done->answer,
                        Exchanges::Clock::now());
    respond(resource, session, request, query, response, *done->answer);
    return;  // libcoap frees the async once this returns
  }

  // A retransmission of a request answered already: the same answer, never a second run.
  if (const Answer* kept = exchanges_.find(peer, static_cast<std::uint16_t>(coap_pdu_get_mid(request)),
                                           Exchanges::Clock::now())) {
    Answer copy = *kept;
    return answer(resource, session, request, query, response, copy, peer);
  }

  coap_string_t* uri = coap_get_uri_path(request);
  const std::string path = text_of(uri);
  coap_delete_string(uri);
  const std::string query_text = text_of(query);
  const auto method = coap_pdu_get_code(request);
  auto reply = [&](const Answer& a) { answer(resource, session, request, query, response, a, peer); };
  // A request left to finish later; false: its token is still in use by another of this peer's requests.
  auto deferred = [&](bool registered) {
    if (!registered) reply(busy_token());
  };

  try {
    const bool function_path = path.rfind("function/", 0) == 0;
    std::string name;
    std::string rest;
    if (function_path) {
      auto slash = path.find('/', 9);
      name = path.substr(9, slash == std::string::npos ? std::string::npos : slash - 9);
      rest = slash == std::string::npos ? std::string() : path.substr(slash);
    }
    if (function_path && rest.empty() && !name.empty()) {  // function/{name}
      if (method != COAP_REQUEST_CODE_POST) return reply(error_answer(405, "use POST"));
      if (!admin && !engine_.is_public(name).value_or(config_.public_invoke)) return reply(unauthorized());
      // An unauthenticated client first proves it receives at its address (RFC 9175's Echo): an answer much
      // larger than the request never goes to an address that did not ask for it.
      if (!admin && !address_verified(request, response, peer)) {
        return reply(Answer{401, {}, -1});  // no payload: smaller than the request
      }
      if (!exchanges_.start_call(peer)) {
        return reply(error_answer(503, "too many calls of yours are running; retry later", "overloaded", 1));
      }
      auto body = take_body(resource, session, request, query, response, peer, path);
      if (!body) return exchanges_.end_call(peer);  // answered: the next block, or why not
      if (!invoke(session, request, peer, std::move(name), std::move(*body))) {
        exchanges_.end_call(peer);
        return reply(busy_token());
      }
      return;
    }
    if (!admin) return reply(unauthorized());
    if (function_path && rest == "/logs" && !name.empty()) {
      if (method != COAP_REQUEST_CODE_GET) return reply(error_answer(405, "use GET"));
      const std::size_t limit = parse_limit(query_text, 100);
      return deferred(offload(session, request, peer, [this, name, limit] {
        Answer logs{205, join_json_array(engine_.logs(name, limit)), -1};
        return logs;
      }));
    }
    if (path == "admin/upload") {
      if (method != COAP_REQUEST_CODE_POST) return reply(error_answer(405, "use POST"));
      auto body = take_body(resource, session, request, query, response, peer, path);
      if (!body) return;
      return deferred(offload(session, request, peer, [this, body = std::move(*body)] {
        json parsed = json::parse(body, nullptr, false);
        if (!parsed.is_object()) throw Error(ErrorCode::invalid_input, "send a JSON object: name, code_b64, req_b64");
        auto name = *frontend::string_field(parsed, "name", true);
        auto source = frontend::decode_upload(parsed);
        auto info = engine_.upload(name, source.code, source.requirements, source.settings);
        return Answer{201,
                      json{{"status", "success"}, {"function", info.name}, {"version", info.version}}.dump(), -1};
      }));
    }
    if (path == "admin/functions") {
      if (method != COAP_REQUEST_CODE_GET) return reply(error_answer(405, "use GET"));
      return deferred(offload(session, request, peer, [this] {
        json out = json::object();
        for (const auto& info : engine_.list()) out[info.name] = info;
        return Answer{205, out.dump(), -1};
      }));
    }
    if (path.rfind("admin/functions/", 0) == 0 && path.size() > 16 && path.find('/', 16) == std::string::npos) {
      if (method != COAP_REQUEST_CODE_DELETE) return reply(error_answer(405, "use DELETE"));
      return deferred(offload(session, request, peer, [this, name = path.substr(16)] {
        engine_.remove(name);
        return Answer{202, json{{"status", "success"}, {"message", "Function '" + name + "' deleted"}}.dump(), -1};
      }));
    }
    if (path == "admin/status") {
      if (method != COAP_REQUEST_CODE_GET) return reply(error_answer(405, "use GET"));
      return deferred(offload(session, request, peer, [this] {
        json status = engine_.status();
        status["status"] = "ok";
        return Answer{205, status.dump(), -1};
      }));
    }
    return reply(error_answer(404, "no such resource: /" + path));
  } catch (const Error& e) {
    return reply(from_error(e));
  }
}

}  // namespace faas::coap
