#include "callbacks.hpp"

#include <charconv>
#include <chrono>
#include <thread>
#include <utility>  // before Boost.Asio's awaitable.hpp, which needs std::exchange

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace faas::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;

namespace {

constexpr std::size_t max_url = 2048;
constexpr int attempts = 5;

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

// One attempt: true when the receiver answered 2xx.
asio::awaitable<bool> post_once(const CallbackUrl& url, const std::string& record) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  beast::tcp_stream stream(executor);
  auto endpoints = co_await resolver.async_resolve(url.host, url.port, asio::use_awaitable);
  stream.expires_after(std::chrono::seconds(5));
  co_await stream.async_connect(endpoints, asio::use_awaitable);
  bhttp::request<bhttp::string_body> request{bhttp::verb::post, url.target, 11};
  request.set(bhttp::field::host, url.host);
  request.set(bhttp::field::user_agent, "libfaas-callback");
  request.set(bhttp::field::content_type, "application/json");
  request.body() = record;
  request.prepare_payload();
  stream.expires_after(std::chrono::seconds(10));
  co_await bhttp::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024);  // what the receiver says is not kept; a huge answer is cut off
  co_await bhttp::async_read(stream, buffer, parser, asio::use_awaitable);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  auto status = parser.get().result_int();
  co_return status >= 200 && status < 300;
}

asio::awaitable<void> deliver_with_retries(std::string url_text, CallbackUrl url, std::string record) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string last_error;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    try {
      if (co_await post_once(url, record)) co_return;
      last_error = "an answer other than 2xx";
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    if (attempt == attempts) break;
    timer.expires_after(std::chrono::seconds(1 << (attempt - 1)));
    co_await timer.async_wait(asio::use_awaitable);
  }
  spdlog::warn("callback to {} given up after {} attempts: {}", url_text, attempts, last_error);
}

}  // namespace

std::optional<CallbackUrl> parse_callback_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.size() > max_url || url.substr(0, scheme.size()) != scheme) return std::nullopt;
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  CallbackUrl out;
  if (slash != std::string_view::npos) out.target = std::string(rest.substr(slash));
  auto colon = authority.rfind(':');
  auto host = authority.substr(0, colon);
  if (colon != std::string_view::npos) {
    auto port_text = authority.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return std::nullopt;
    }
    out.port = std::to_string(port);
  }
  if (host.empty() || host.size() > 253 || !std::all_of(host.begin(), host.end(), host_char)) return std::nullopt;
  out.host = std::string(host);
  return out;
}

struct Callbacks::Impl {
  asio::io_context context{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(context);
  std::thread thread{[this] { context.run(); }};
};

Callbacks::Callbacks() : impl_(std::make_unique<Impl>()) {}

Callbacks::~Callbacks() {
  impl_->work.reset();
  impl_->context.stop();
  impl_->thread.join();
}

void Callbacks::deliver(const std::string& url, std::string record) {
  auto parsed = parse_callback_url(url);
  if (!parsed) return;  // checked when the call was taken
  asio::co_spawn(impl_->context, deliver_with_retries(url, std::move(*parsed), std::move(record)), asio::detached);
}

}  // namespace faas::http
