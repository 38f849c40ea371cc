// The invocation record's JSON form, and the request-body parser shared by the frontends.
#include "faas/invocation.hpp"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "faas/error.hpp"
#include "util/ids.hpp"
#include "util/json_text.hpp"
#include "util/time.hpp"

namespace faas {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_name: return "invalid_name";
    case ErrorCode::invalid_input: return "invalid_input";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::build_failed: return "build_failed";
    case ErrorCode::overloaded: return "overloaded";
    case ErrorCode::shutting_down: return "shutting_down";
    case ErrorCode::store_unavailable: return "store_unavailable";
    case ErrorCode::internal: return "internal";
  }
  return "internal";
}

void Invocation::fail(std::string type, std::string message) {
  status = InvocationStatus::error;
  error_type = std::move(type);
  error = std::move(message);
  result.clear();
}

std::string Invocation::traceparent() const {
  if (trace_id.empty()) return {};
  return "00-" + trace_id + "-" + span_id + "-" + trace_flags;
}

std::string Invocation::to_json() const {
  std::string out;
  out.reserve(256 + args.size() + kwargs.size() + result.size() + output.size() + error.size() + traceback.size());
  out += "{\"id\":";
  append_json_string(out, id);
  out += ",\"function\":";
  append_json_string(out, function);
  if (version != 0) {
    out += ",\"version\":";
    out += std::to_string(version);
  }
  if (!trigger.empty()) {
    out += ",\"trigger\":";
    append_json_string(out, trigger);
  }
  if (attempt != 0) {
    out += ",\"attempt\":";
    out += std::to_string(attempt);
  }
  if (!node.empty()) {
    out += ",\"node\":";
    append_json_string(out, node);
  }
  out += ",\"args\":";
  out += args;
  if (!kwargs.empty()) {
    out += ",\"kwargs\":";
    out += kwargs;
  }
  if (ok()) {
    out += ",\"result\":";
    out += result;
    out += ",\"status\":\"success\"";
  } else {
    out += ",\"status\":\"error\",\"error\":";
    append_json_string(out, error);
    out += ",\"error_type\":";
    append_json_string(out, error_type);
    if (!traceback.empty()) {
      out += ",\"traceback\":";
      append_json_string(out, traceback);
    }
  }
  if (chunks != 0) {
    out += ",\"chunks\":";
    out += std::to_string(chunks);
    if (chunks_truncated) out += ",\"chunks_truncated\":true";
  }
  out += ",\"time_start\":\"";
  append_local_time(out, time_start);
  out += "\",\"time_end\":\"";
  append_local_time(out, time_end);
  out += "\",\"duration_ms\":";
  append_json_number(out, std::round(duration_ms * 1e6) / 1e6);
  out += ",\"request_id\":";
  append_json_string(out, request_id);
  if (!trace_id.empty()) {  // hex digits only: nothing to escape
    out.append(",\"trace_id\":\"").append(trace_id).append("\",\"span_id\":\"").append(span_id).push_back('"');
    if (!parent_span_id.empty()) out.append(",\"parent_span_id\":\"").append(parent_span_id).push_back('"');
  }
  out += ",\"stdout\":";
  append_json_string(out, output);
  out += '}';
  return out;
}

std::string to_json_text(const nlohmann::json& value) { return value.dump(); }

std::string make_request_id() { return make_uuid4(); }

namespace {

// A SAX handler that validates a request body and copies the values of its top-level "args" and "kwargs" keys
// out as compact JSON text. Numbers are copied as written, so integers of any size stay exact.
class InvokeBodyReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit InvokeBodyReader(InvokeRequest& request) : request_(request) {}

  std::string error;

  bool null() override { return scalar("null", "null"); }
  bool boolean(bool value) override { return scalar(value ? "true" : "false", "a boolean"); }
  bool number_integer(number_integer_t value) override { return integer(value); }
  bool number_unsigned(number_unsigned_t value) override { return integer(value); }
  bool number_float(number_float_t, const string_t& text) override { return scalar(text, "a number"); }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }

  bool string(string_t& value) override {
    if (depth_ == 0) return fail("request body must be a JSON object");
    if (depth_ == 1 && key_ == Key::request_id) {
      request_.request_id = value;
      return true;
    }
    if (depth_ == 1 && key_ == Key::traceparent) {
      if (parse_traceparent(value)) request_.traceparent = value;  // an invalid one is ignored, as the spec says
      return true;
    }
    if (depth_ == 1 && key_ == Key::version) return fail(wrong_type("a string"));
    if (!capturing()) return depth_ > 1 || key_ == Key::other || fail(wrong_type("a string"));
    separate();
    append_json_string(*target_, value);
    return true;
  }

  bool start_object(std::size_t) override { return open('{', Key::kwargs, "an object"); }
  bool end_object() override { return close('}'); }
  bool start_array(std::size_t) override { return open('[', Key::args, "an array"); }
  bool end_array() override { return close(']'); }

  bool key(string_t& name) override {
    if (depth_ == 1) {
      key_ = name == "args"         ? Key::args
             : name == "kwargs"     ? Key::kwargs
             : name == "request_id" ? Key::request_id
             : name == "version"    ? Key::version
             : name == "traceparent" ? Key::traceparent
                                    : Key::other;
      if (key_ == Key::args) request_.args.clear();
      if (key_ == Key::kwargs) request_.kwargs.clear();
      return true;
    }
    if (capturing()) {
      separate();
      append_json_string(*target_, name);
      target_->push_back(':');
      after_key_ = true;
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    return fail("request body is not valid JSON (at byte " + std::to_string(position) + ")");
  }

 private:
  enum class Key { none, args, kwargs, request_id, version, traceparent, other };
  static constexpr int max_depth = 256;

  bool capturing() const { return target_ != nullptr; }

  // Writes the comma that separates this value from the previous one in the same container.
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty() && !first_.back()) target_->push_back(',');
    if (!first_.empty()) first_.back() = false;
  }

  template <class Int>
  bool integer(Int value) {
    if (depth_ == 1 && key_ == Key::version) {
      if (value < 1) return fail("\"version\" must be a positive integer");
      request_.version = static_cast<std::uint64_t>(value);
      return true;
    }
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    return scalar(std::string_view(digits, static_cast<std::size_t>(end - digits)), "a number");
  }

  bool scalar(std::string_view text, const char* what) {
    if (depth_ == 0) return fail("request body must be a JSON object");
    if (capturing()) {
      separate();
      target_->append(text);
      return true;
    }
    if (depth_ == 1 && key_ == Key::kwargs && text == "null") return true;  // "kwargs": null means none
    if (depth_ == 1 && key_ == Key::request_id && text == "null") return true;
    if (depth_ == 1 && key_ == Key::version && text == "null") return true;
    if (depth_ == 1 && key_ == Key::traceparent && text == "null") return true;
    if (depth_ == 1 && key_ != Key::other) return fail(wrong_type(what));
    return true;
  }

  bool open(char bracket, Key expected_key, const char* what) {
    if (++depth_ > max_depth) return fail("request body is nested too deeply");
    if (depth_ == 1) {
      if (bracket != '{') return fail("request body must be a JSON object");
      return true;
    }
    if (depth_ == 2 && !capturing()) {
      if (key_ == Key::other) return true;
      if (key_ != expected_key) return fail(wrong_type(what));
      target_ = key_ == Key::args ? &request_.args : &request_.kwargs;
      capture_depth_ = depth_;
    } else if (capturing()) {
      separate();
    }
    if (capturing()) {
      target_->push_back(bracket);
      first_.push_back(true);
    }
    return true;
  }

  bool close(char bracket) {
    if (capturing()) {
      target_->push_back(bracket);
      first_.pop_back();
      if (depth_ == capture_depth_) target_ = nullptr;
    }
    --depth_;
    return true;
  }

  std::string wrong_type(const char* what) const {
    switch (key_) {
      case Key::args: return std::string("\"args\" must be an array, not ") + what;
      case Key::kwargs: return std::string("\"kwargs\" must be an object, not ") + what;
      case Key::request_id: return std::string("\"request_id\" must be a string, not ") + what;
      case Key::version: return std::string("\"version\" must be a positive integer, not ") + what;
      case Key::traceparent: return std::string("\"traceparent\" must be a string, not ") + what;
      default: return "unexpected value";
    }
  }

  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }

  InvokeRequest& request_;
  int depth_ = 0;
  Key key_ = Key::none;
  std::string* target_ = nullptr;
  int capture_depth_ = 0;
  std::vector<bool> first_;  // per open container being copied: no element written yet
  bool after_key_ = false;
};

}  // namespace

void parse_invoke_body(std::string_view body, InvokeRequest& request) {
  request.args = "[]";
  request.kwargs.clear();
  request.version = 0;
  auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return;
  InvokeBodyReader reader(request);
  bool ok = nlohmann::json::sax_parse(body.begin(), body.end(), &reader, nlohmann::json::input_format_t::json, true);
  if (!ok) {
    request.args = "[]";
    request.kwargs.clear();
    throw Error(ErrorCode::invalid_input, reader.error.empty() ? "request body is not valid JSON" : reader.error);
  }
  if (request.args.empty()) request.args = "[]";
}

std::string invoke_body(const InvokeRequest& request) {
  std::string body = R"({"args":)" + request.args;
  if (!request.kwargs.empty()) body += R"(,"kwargs":)" + request.kwargs;
  auto request_id = nlohmann::json(request.request_id).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  body += R"(,"request_id":)" + request_id;
  if (request.version != 0) body += R"(,"version":)" + std::to_string(request.version);
  if (parse_traceparent(request.traceparent)) body += R"(,"traceparent":")" + request.traceparent + '"';
  body += "}";
  return body;
}

}  // namespace faas
