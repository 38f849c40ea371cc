// faas/error.hpp — the one way libfaas reports failure: a typed error carrying a code and a message.
//
// Synchronous calls throw faas::Error; asynchronous calls deliver it through faas::Outcome. Each frontend maps the
// codes to its protocol once (HTTP status, MQTT error topic, Python exception class).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace faas {

enum class ErrorCode {
  invalid_name,      // a function name outside ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ or containing ".."
  invalid_input,     // malformed arguments, code or request (the caller's fault)
  not_found,         // no function of that name
  build_failed,      // the uploaded code does not import or has no callable main, or pip failed
  overloaded,        // the invocation queue is full; retry later
  shutting_down,     // the engine is stopping and takes no new work
  store_unavailable, // the data dir cannot take writes (disk full, I/O error, read-only, locked too long); retry
                     // later: nothing was recorded, and an invocation's result was not given out
  internal,          // a broken invariant or an I/O failure of the server itself
};

std::string_view to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// Either a value or the Error that prevented it; what asynchronous completions receive.
template <class T>
class Outcome {
 public:
  Outcome(T value) : state_(std::move(value)) {}          // NOLINT: implicit by design
  Outcome(Error error) : state_(std::move(error)) {}      // NOLINT: implicit by design

  bool ok() const noexcept { return state_.index() == 0; }
  T& value() & { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const T& value() const& { return std::get<0>(state_); }
  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

}  // namespace faas
