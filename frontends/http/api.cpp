// api.cpp — routing, authentication, request validation and the mapping of engine errors to HTTP statuses.
#include "api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "callbacks.hpp"
#include "multipart.hpp"
#include "upload.hpp"

namespace faas::http {

extern const std::string_view dashboard_html;  // generated from dashboard/dashboard.html at build time

namespace {


using nlohmann::json;

// An asynchronous call still waiting or dead, as GET /admin/invocations/{id} and /admin/dead-letters show it.
json async_call_json(const AsyncCall& call) {
  json out{{"id", call.id},
           {"function", call.request.function},
           {"status", call.dead ? "dead" : "pending"},
           {"attempt", call.attempt},
           {"max_attempts", call.max_attempts},
           {"request_id", call.request.request_id},
           {"args", json::parse(call.request.args, nullptr, false)},
           {"updated_at", call.updated_at}};
  if (!call.request.kwargs.empty()) out["kwargs"] = json::parse(call.request.kwargs, nullptr, false);
  if (call.request.version != 0) out["version"] = call.request.version;
  if (!call.error.empty()) out["error"] = call.error;
  return out;
}

Response json_response(unsigned status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

// The one mapping of the engine's error codes to HTTP statuses; the body also carries the code.
Response from_error(const Error& error) {
  unsigned status = 500;
  unsigned retry_after = 0;
  switch (error.code()) {
    case ErrorCode::invalid_name:
    case ErrorCode::invalid_input:
      status = 400;
      break;
    case ErrorCode::not_found:
      status = 404;
      break;
    case ErrorCode::overloaded:
      status = 503;
      retry_after = 1;
      break;
    case ErrorCode::shutting_down:
    case ErrorCode::store_unavailable:
      status = 503;
      retry_after = 5;
      break;
    case ErrorCode::build_failed:
    case ErrorCode::internal:
      break;
  }
  auto response = error_response(status, error.what(), to_string(error.code()));
  response.retry_after_seconds = retry_after;
  return response;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes (and '+' in queries). nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
  }
  return out;
}

// The value of `key` in a query string, decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    std::size_t equals = pair.find('=');
    if (pair.substr(0, equals) != key) continue;
    if (equals == std::string_view::npos) return std::string();
    auto value = percent_decode(pair.substr(equals + 1), true);
    if (!value) throw Error(ErrorCode::invalid_input, "malformed %-escape in the query string");
    return value;
  }
  return std::nullopt;
}

bool is_true(const std::optional<std::string>& flag) {
  return flag && (flag->empty() || *flag == "1" || *flag == "true" || *flag == "yes");
}

// Where a follow resumes: the Last-Event-ID a reconnecting EventSource sends, else ?after= (for curl and scripts).
std::string resume_after(const Request& request, std::string_view query) {
  if (!request.last_event_id.empty()) return request.last_event_id;
  return query_param(query, "after").value_or(std::string());
}

std::string decoded_segment(std::string_view segment) {
  auto value = percent_decode(segment, false);
  if (!value) throw Error(ErrorCode::invalid_input, "malformed %-escape in the path");
  return *value;
}

// Returns the rest of `path` after `prefix` when it is a single non-empty segment, else nullopt.
std::optional<std::string_view> one_segment_after(std::string_view path, std::string_view prefix) {
  if (path.size() <= prefix.size() || path.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view rest = path.substr(prefix.size());
  if (rest.find('/') != std::string_view::npos) return std::nullopt;
  return rest;
}

// The {name} of /admin/functions/{name}/{what} (settings, versions, rollback).
std::optional<std::string_view> function_subresource(std::string_view path, std::string_view what) {
  if (path.size() <= what.size() + 1 || path.substr(path.size() - what.size()) != what ||
      path[path.size() - what.size() - 1] != '/') {
    return std::nullopt;
  }
  return one_segment_after(path.substr(0, path.size() - what.size() - 1), "/admin/functions/");
}

// A positive integer from a query parameter.
std::uint64_t positive_integer(std::string_view text, const char* what) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) {
    throw Error(ErrorCode::invalid_input, std::string(what) + " must be a positive integer");
  }
  return value;
}

Response method_not_allowed(std::string_view allow) {
  auto response = error_response(405, "method not allowed; use " + std::string(allow));
  response.allow = allow;
  return response;
}

std::string upload_success(const FunctionInfo& info) {
  return json{{"status", "success"},
              {"message", "Function '" + info.name + "' uploaded (version " + std::to_string(info.version) + ")"},
              {"function", info.name},
              {"version", info.version}}
      .dump();
}

// The code file's name without directories or ".py": the default function name of a multipart upload.
std::string name_from_filename(std::string_view filename) {
  std::size_t slash = filename.find_last_of("/\\");
  if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
  if (filename.size() > 3 && filename.substr(filename.size() - 3) == ".py") filename.remove_suffix(3);
  return std::string(filename);
}

struct UploadForm {
  std::string name;
  std::string code;
  std::optional<std::string> requirements;
  json settings;  // null: unchanged
};

UploadForm parse_multipart_upload(const Request& request) {
  auto parts = parse_multipart(request.body, multipart_boundary(request.content_type));
  UploadForm form;
  const FormPart* code = find_part(parts, "code");
  if (code == nullptr) throw Error(ErrorCode::invalid_input, "the form has no 'code' file field");
  form.code = std::string(code->data);
  if (const FormPart* name = find_part(parts, "name"); name != nullptr && !name->data.empty()) {
    form.name = std::string(name->data);
  } else if (code->filename && !code->filename->empty()) {
    form.name = name_from_filename(*code->filename);
  } else {
    throw Error(ErrorCode::invalid_input, "give the function a 'name' field or a code file name");
  }
  if (const FormPart* requirements = find_part(parts, "requirements")) {
    form.requirements = std::string(requirements->data);
  }
  if (const FormPart* settings = find_part(parts, "settings"); settings != nullptr && !settings->data.empty()) {
    form.settings = json::parse(settings->data, nullptr, false);
    if (!form.settings.is_object()) throw Error(ErrorCode::invalid_input, "the 'settings' field must be a JSON object");
  }
  return form;
}

UploadForm parse_json_upload(const Request& request) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) throw Error(ErrorCode::invalid_input, "the body is not valid JSON");
  if (!body.is_object()) throw Error(ErrorCode::invalid_input, "the body must be a JSON object");
  UploadForm form;
  form.name = *frontend::string_field(body, "name", true);
  auto source = frontend::decode_upload(body);
  form.code = std::move(source.code);
  form.requirements = std::move(source.requirements);
  form.settings = std::move(source.settings);
  return form;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
}

// Whether a browser page of `origin` may send writes: one of the configured origins, compared without regard to
// case. Never derived from the request's own Host header, which a DNS-rebinding page controls.
bool allowed_origin(std::string_view origin, const std::vector<std::string>& allowed) {
  return std::any_of(allowed.begin(), allowed.end(),
                     [origin](const std::string& candidate) { return iequals_ascii(origin, candidate); });
}

}  // namespace

Response error_response(unsigned status, std::string_view message, std::string_view code) {
  json body{{"status", "error"}, {"message", message}};
  if (!code.empty()) body["code"] = code;
  // A message may quote the caller's bytes (a traceback, pip's output): never let them break the answer.
  return json_response(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

Api::Api(Engine& engine, const HttpConfig& config, Metrics& metrics, Runner blocking)
    : engine_(engine), config_(config), metrics_(metrics), blocking_(std::move(blocking)),
      auth_(config.user, config.password) {}

void Api::handle(Request request, Reply reply) {
  const std::string_view target = request.target;
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  const std::string_view method = request.method;
  const bool get = method == "GET";

  // Every decoding that may throw happens before `reply` (or `request`, which `path` views) is moved away, so that
  // the handler below can still answer.
  try {
    if (path == "/healthz") {
      if (!get) return reply(method_not_allowed("GET"));
      if (draining_) return reply(error_response(503, "shutting down"));
      // A load balancer sends calls elsewhere while this node cannot record them.
      if (!engine_.store_available()) return reply(error_response(503, "the store is unreachable"));
      return reply(json_response(200, R"({"status":"ok"})"));
    }
    // A browser that holds the Basic credentials sends them with any site's form posts too: a write from a page
    // of another origin is refused (browsers always send Origin with cross-site POST and DELETE).
    if (method != "GET" && !request.origin.empty() && !allowed_origin(request.origin, config_.allowed_origins)) {
      return reply(error_response(403, "cross-origin request refused"));
    }
    // /function/{name} is open when the function says so, else when the server does (--public-invoke).
    std::optional<std::string> invoked;  // the {name} of /function/{name}, decoded once
    if (auto name = one_segment_after(path, "/function/")) invoked = decoded_segment(*name);
    const bool open = starts_with(path, "/function/") &&
                      (invoked ? engine_.is_public(*invoked) : std::nullopt).value_or(config_.public_invoke);
    if (!open && !request.credentials_verified) {
      if (!auth_.check(request.authorization)) {
        auto response = error_response(401, "authentication required");
        response.ask_credentials = true;
        return reply(std::move(response));
      }
      // Let the connection skip the check for its next requests with this same header.
      reply = [reply = std::move(reply)](Response response) {
        response.credentials_accepted = true;
        reply(std::move(response));
      };
    }

    if (invoked) {
      if (method != "POST") return reply(method_not_allowed("POST"));
      InvokeRequest invoke_request;
      invoke_request.function = std::move(*invoked);
      parse_invoke_body(request.body, invoke_request);  // Error(invalid_input) → 400
      if (!request.traceparent.empty()) invoke_request.traceparent = std::move(request.traceparent);  // over the body's
      const bool events = request.accept.find("text/event-stream") != std::string::npos;
      if (auto version = query_param(query, "version")) invoke_request.version = positive_integer(*version, "version");
      if (request.async) {
        auto options = async_options(request, open && !request.credentials_verified &&
                                                  !auth_.check(request.authorization));
        // Taking it reads the store (the function, its settings, the idempotency key): off the I/O threads.
        return blocking_([this, invoke_request = std::move(invoke_request), options = std::move(options),
                          reply = std::move(reply)]() mutable {
          invoke_detached(std::move(invoke_request), std::move(options), std::move(reply));
        });
      }
      if (invoke_request.version != 0) {
        // The first call of a kept version may write its files or build its virtualenv: off the I/O threads.
        return blocking_([this, invoke_request = std::move(invoke_request), events,
                          reply = std::move(reply)]() mutable {
          invoke(std::move(invoke_request), events, std::move(reply));
        });
      }
      return invoke(std::move(invoke_request), events, std::move(reply));
    }
    if (path == "/admin/upload") {
      if (method != "POST") return reply(method_not_allowed("POST"));
      return upload(std::move(request), std::move(reply));
    }
    if (path == "/admin/functions") {
      if (!get) return reply(method_not_allowed("GET"));
      return offload(std::move(reply), [this] {
        json out = json::object();
        for (const auto& info : engine_.list()) out[info.name] = info;
        return json_response(200, out.dump());
      });
    }
    if (auto name = function_subresource(path, "versions")) {
      if (!get) return reply(method_not_allowed("GET"));
      std::string function = decoded_segment(*name);
      return offload(std::move(reply), [this, name = std::move(function)] {
        return json_response(200, json(engine_.versions(name)).dump());
      });
    }
    if (auto name = function_subresource(path, "rollback")) {
      if (method != "POST") return reply(method_not_allowed("POST"));
      std::string function = decoded_segment(*name);
      json body = json::parse(request.body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || !body.contains("version") ||
          !body["version"].is_number_unsigned() || body["version"].get<std::uint64_t>() == 0) {
        return reply(error_response(400, "send {\"version\": N}, N a kept version (see .../versions)",
                                    "invalid_input"));
      }
      return offload(std::move(reply), [this, name = std::move(function), version = body["version"].get<std::uint64_t>()] {
        auto info = engine_.rollback(name, version);
        json out{{"status", "success"},
                 {"message", "Function '" + info.name + "' rolled back to version " + std::to_string(info.version)},
                 {"function", info.name},
                 {"version", info.version}};
        return json_response(200, out.dump());
      });
    }
    if (auto name = function_subresource(path, "settings")) {
      if (!get && method != "PATCH") return reply(method_not_allowed("GET, PATCH"));
      std::string function = decoded_segment(*name);
      if (get) {
        return offload(std::move(reply), [this, name = std::move(function)] {
          return json_response(200, settings_view(engine_.settings(name), engine_.config()).dump());
        });
      }
      json patch = json::parse(request.body, nullptr, false);
      if (patch.is_discarded() || !patch.is_object()) {
        return reply(error_response(400, "send the settings to change as a JSON object", "invalid_input"));
      }
      return offload(std::move(reply), [this, name = std::move(function), patch = std::move(patch)] {
        return json_response(200, settings_view(engine_.update_settings(name, patch), engine_.config()).dump());
      });
    }
    if (auto name = one_segment_after(path, "/admin/functions/")) {
      if (method != "DELETE" && !get) return reply(method_not_allowed("GET, DELETE"));
      std::string function = decoded_segment(*name);
      return offload(std::move(reply), [this, name = std::move(function), remove = method == "DELETE"] {
        if (!remove) return json_response(200, json(engine_.info(name)).dump());
        engine_.remove(name);
        return json_response(200, json{{"status", "success"}, {"message", "Function '" + name + "' deleted"}}.dump());
      });
    }
    if (auto name = one_segment_after(path, "/admin/logs/")) {
      if (!get) return reply(method_not_allowed("GET"));
      const bool follow = is_true(query_param(query, "follow"));
      std::size_t limit = follow ? 0 : 1000;  // following: how many of the newest to send first
      if (auto text = query_param(query, "limit")) {
        auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
        if (ec != std::errc() || end != text->data() + text->size()) {
          return reply(error_response(400, "limit must be a non-negative integer"));
        }
      }
      std::string function = decoded_segment(*name);
      if (follow) {
        return offload(std::move(reply), [this, name = std::move(function), after = resume_after(request, query),
                                          limit] { return follow_records(name, after, limit); });
      }
      return offload(std::move(reply), [this, name = std::move(function), limit] {
        return json_response(200, join_json_array(engine_.logs(name, limit)));
      });
    }
    if (path == "/admin/events") {
      if (!get) return reply(method_not_allowed("GET"));
      return offload(std::move(reply), [this, after = resume_after(request, query)] {
        return follow_records({}, after, 0);
      });
    }
    if (path == "/admin/dead-letters") {
      if (!get) return reply(method_not_allowed("GET"));
      return offload(std::move(reply), [this] {
        json out = json::array();
        for (const auto& call : engine_.dead_letters()) out.push_back(async_call_json(call));
        return json_response(200, out.dump());
      });
    }
    if (path == "/admin/dead-letters/redrive") {
      if (method != "POST") return reply(method_not_allowed("POST"));
      return offload(std::move(reply), [this] {
        json ids = json::array();
        for (const auto& call : engine_.dead_letters()) {
          engine_.redrive(call.id);
          ids.push_back(call.id);
        }
        return json_response(200, json{{"status", "success"}, {"redriven", ids}}.dump());
      });
    }
    if (auto id = one_segment_after(path, "/admin/dead-letters/")) {
      if (method != "DELETE") return reply(method_not_allowed("DELETE"));
      return offload(std::move(reply), [this, id = decoded_segment(*id)] {
        engine_.discard_dead_letter(id);
        return json_response(200, json{{"status", "success"}, {"message", "dead letter " + id + " discarded"}}.dump());
      });
    }
    if (starts_with(path, "/admin/dead-letters/") && path.ends_with("/redrive")) {
      if (method != "POST") return reply(method_not_allowed("POST"));
      auto segment = path.substr(20, path.size() - 20 - 8);
      if (segment.empty() || segment.find('/') != std::string_view::npos) {
        return reply(error_response(404, "no such route: " + std::string(path)));
      }
      return offload(std::move(reply), [this, id = decoded_segment(segment)] {
        engine_.redrive(id);
        return json_response(200, json{{"status", "success"}, {"redriven", json::array({id})}}.dump());
      });
    }
    if (auto id = one_segment_after(path, "/admin/invocations/")) {
      if (!get) return reply(method_not_allowed("GET"));
      std::string invocation_id = decoded_segment(*id);
      return invocation_record(std::move(invocation_id), std::move(reply));
    }
    if (path == "/admin/status") {
      if (!get) return reply(method_not_allowed("GET"));
      return offload(std::move(reply), [this] {
        json status = engine_.status();
        status["status"] = "ok";  // as the original Flask server answered; scripts check for it
        return json_response(200, status.dump());
      });
    }
    if (path == "/admin/nodes") {
      if (!get) return reply(method_not_allowed("GET"));
      return offload(std::move(reply), [this] {
        return json_response(200, json{{"nodes", engine_.nodes()}}.dump());
      });
    }
    if (path == "/admin/stats") {
      if (!get) return reply(method_not_allowed("GET"));
      return offload(std::move(reply), [this] { return json_response(200, json(engine_.stats()).dump()); });
    }
    if (path == "/metrics") {
      if (!get) return reply(method_not_allowed("GET"));
      return offload(std::move(reply), [this] {
        Response response = json_response(200, metrics_.render(engine_.status(), engine_.stats()));
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        return response;
      });
    }
    if (path == "/admin/gui" || path == "/admin/gui/" || path == "/") {
      if (!get) return reply(method_not_allowed("GET"));
      if (path == "/") {
        Response response = json_response(302, "");
        response.location = "/admin/gui";
        return reply(std::move(response));
      }
      Response response = json_response(200, std::string(dashboard_html));
      response.content_type = "text/html; charset=utf-8";
      response.no_framing = true;
      return reply(std::move(response));
    }
    return reply(error_response(404, "no such route: " + std::string(path)));
  } catch (const Error& e) {
    if (!reply) throw;  // a broken invariant: the throw came after `reply` was handed on
    return reply(from_error(e));
  }
}

void Api::invoke(InvokeRequest invoke_request, bool events, Reply reply) {
  // A function that streams (a generator) answers as it yields; any other answers once, as always.
  auto stream = std::make_shared<CallStream>(events, std::move(reply));
  invoke_request.on_chunk = [stream](std::string_view chunk) { stream->chunk(chunk); };
  engine_.invoke_async(std::move(invoke_request), [stream](Outcome<InvocationResult> outcome) {
    if (!outcome.ok()) return stream->finish(from_error(outcome.error()));
    auto response = json_response(200, std::move(outcome.value().json));
    if (spdlog::should_log(spdlog::level::info)) response.trace_id = outcome.value().record.trace_id;  // access log
    stream->finish(std::move(response));
  });
  // After the engine took it, so that a call it refused still gets its status and JSON error.
  if (events) stream->begin();
}

AsyncOptions Api::async_options(const Request& request, bool anonymous) const {
  AsyncOptions options;
  if (!request.max_attempts.empty()) {
    unsigned attempts = 0;
    const auto& text = request.max_attempts;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), attempts);
    if (ec != std::errc() || end != text.data() + text.size() || attempts < 1 || attempts > 10) {
      throw Error(ErrorCode::invalid_input, "X-Faas-Max-Attempts must be a whole number from 1 to 10");
    }
    options.max_attempts = attempts;
  }
  for (char c : request.idempotency_key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw Error(ErrorCode::invalid_input, "X-Idempotency-Key holds a control character");
    }
  }
  options.idempotency_key = request.idempotency_key;
  if (!request.callback_url.empty()) {
    // It makes the server send a request where the caller says: only the admin may ask for that.
    if (anonymous) throw Error(ErrorCode::invalid_input, "X-Callback-Url needs the admin's credentials");
    if (!parse_callback_url(request.callback_url)) {
      throw Error(ErrorCode::invalid_input, "X-Callback-Url must be an http://host[:port]/path URL");
    }
    options.reply = request.callback_url;
  }
  return options;
}

void Api::invoke_detached(InvokeRequest invoke_request, AsyncOptions options, Reply reply) {
  // Answered once the call is in the store: from then on a crash does not lose it.
  auto request_id = std::make_shared<std::string>(invoke_request.request_id);
  engine_.submit_async("http", std::move(invoke_request), std::move(options),
                       [request_id, reply = std::move(reply)](Outcome<std::string> accepted) {
                         if (!accepted.ok()) return reply(from_error(accepted.error()));
                         const auto& id = accepted.value();
                         json body{{"status", "accepted"}, {"id", id}};
                         if (!request_id->empty()) body["request_id"] = *request_id;
                         Response response = json_response(202, body.dump());
                         response.location = "/admin/invocations/" + id;
                         reply(std::move(response));
                       });
}

Response Api::follow_records(std::string function, std::string after, std::size_t backlog) {
  // The newest records first, when asked: the follow resumes after the last of them, so none is missed between.
  std::string sent;
  if (after.empty() && backlog > 0 && !function.empty()) {
    for (const auto& text : engine_.logs(function, std::min<std::size_t>(backlog, 1000))) {
      auto parsed = json::parse(text, nullptr, false);
      auto id = parsed.is_object() && parsed["id"].is_string() ? parsed["id"].get<std::string>() : std::string();
      sent += sse_event(text, id);
      if (!id.empty()) after = std::move(id);
    }
  }
  auto events = std::make_shared<RecordEvents>(": following\n\n" + sent);  // the comment makes the stream start
  FollowOptions options;
  options.function = std::move(function);
  options.after = std::move(after);
  events->attach(engine_.follow(std::move(options), events->waker()));
  Response response;
  response.content_type = "text/event-stream";
  response.events = std::move(events);
  return response;
}

void Api::offload(Reply reply, std::function<Response()> work) {
  blocking_([reply = std::move(reply), work = std::move(work)] {
    Response response;
    try {
      response = work();
    } catch (const Error& e) {
      response = from_error(e);
    } catch (const std::exception& e) {
      spdlog::error("request failed: {}", e.what());
      response = error_response(500, e.what());
    }
    reply(std::move(response));
  });
}

void Api::invocation_record(std::string id, Reply reply) {
  offload(std::move(reply), [this, id = std::move(id)] {
    if (auto call = engine_.async_call(id)) {
      return json_response(call->dead ? 200 : 202, async_call_json(*call).dump());
    }
    // A finished asynchronous call answers with its last attempt's record (attempts are numbered without gaps).
    if (auto record = engine_.record(id); record && record->find("\"attempt\":") != std::string::npos) {
      for (unsigned attempt = 2;; ++attempt) {
        auto later = engine_.record(id + "." + std::to_string(attempt));
        if (!later) break;
        record = std::move(later);
      }
      return json_response(200, std::move(*record));
    }
    switch (engine_.invocation_state(id)) {
      case Engine::InvocationState::running:
        return json_response(202, json{{"status", "pending"}, {"id", id}}.dump());
      case Engine::InvocationState::committed:
        if (auto record = engine_.record(id)) return json_response(200, std::move(*record));
        break;  // deleted since
      case Engine::InvocationState::unknown:
        break;
    }
    return error_response(404, "no invocation with id " + id, to_string(ErrorCode::not_found));
  });
}

void Api::upload(Request request, Reply reply) {
  // Parsing a large form and building the function (maybe pip) both happen off the I/O threads.
  offload(std::move(reply), [this, request = std::move(request)] {
    try {
      UploadForm form;
      if (starts_with(request.content_type, "multipart/form-data")) {
        form = parse_multipart_upload(request);
      } else if (starts_with(request.content_type, "application/json")) {
        form = parse_json_upload(request);
      } else {
        return error_response(400, "send multipart/form-data (fields code, name, requirements) or "
                                   "application/json (name, code_b64, req_b64)");
      }
      auto info = engine_.upload(form.name, form.code, form.requirements, form.settings);
      metrics_.record_upload(true);
      return json_response(200, upload_success(info));
    } catch (const Error& e) {
      metrics_.record_upload(false);
      if (e.code() == ErrorCode::build_failed) spdlog::warn("upload failed: {}", e.what());
      throw;
    }
  });
}

}  // namespace faas::http
