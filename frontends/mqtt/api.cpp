// api.cpp — topic routing, request validation, the admin commands and the typed error topic.
#include "api.hpp"

#include <ctime>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "upload.hpp"

namespace faas::mqtt {
namespace {

using nlohmann::json;

// The request's JSON object; empty payloads count as {}. Throws Error(invalid_input).
json parse_object(const std::string& payload) {
  if (payload.empty()) return json::object();
  json value = json::parse(payload, nullptr, false);
  if (value.is_discarded()) throw Error(ErrorCode::invalid_input, "the payload is not valid JSON");
  if (!value.is_object()) throw Error(ErrorCode::invalid_input, "the payload must be a JSON object");
  return value;
}

// The request_id a client sent, for error answers to requests that could not be parsed whole.
std::string request_id_in(const std::string& payload) {
  json value = json::parse(payload, nullptr, false);
  if (value.is_object()) {
    auto it = value.find("request_id");
    if (it != value.end() && it->is_string() && it->get_ref<const std::string&>().size() <= 256) return *it;
  }
  return make_request_id();
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// Where an inbox entry's answer goes: the request's topic and its MQTT 5 reply-to, as CBOR (correlation data are
// bytes).
std::string encode_reply(const std::string& topic, const ReplyTo& reply) {
  json value{{"topic", topic},
             {"reply_topic", reply.topic},
             {"correlation", json::binary(std::vector<std::uint8_t>(reply.correlation.begin(), reply.correlation.end()))}};
  auto bytes = json::to_cbor(value);
  return std::string(bytes.begin(), bytes.end());
}

std::pair<std::string, ReplyTo> decode_reply(const std::string& bytes) {
  json value = json::from_cbor(bytes);
  const auto& correlation = value.at("correlation").get_binary();
  return {value.at("topic").get<std::string>(),
          ReplyTo{value.at("reply_topic").get<std::string>(), std::string(correlation.begin(), correlation.end())}};
}

// A record time ("YYYY-MM-DD HH:MM:SS.ffffff", local) as Unix seconds; nullopt when it does not parse.
std::optional<double> unix_seconds(const std::string& local_time) {
  std::tm parts{};
  const char* rest = ::strptime(local_time.c_str(), "%Y-%m-%d %H:%M:%S", &parts);
  if (rest == nullptr) return std::nullopt;
  parts.tm_isdst = -1;
  std::time_t whole = std::mktime(&parts);
  if (whole == -1) return std::nullopt;
  double fraction = 0;
  if (*rest == '.') fraction = std::strtod(rest, nullptr);
  return static_cast<double>(whole) + fraction;
}

}  // namespace

Api::Api(Engine& engine, const MqttConfig& config, Publish publish)
    : engine_(engine),
      config_(config),
      publish_(std::move(publish)),
      uploads_(config.upload_threads),
      admin_(1),
      invoke_root_(config.base_topic + "/invoke"),
      invoke_prefix_(invoke_root_ + "/"),
      admin_prefix_(config.base_topic + "/admin/") {}

Api::~Api() {
  uploads_.join();
  admin_.join();
}

std::vector<std::string> Api::filters() const {
  // "X/#" also matches X itself, so a request on <base>/invoke (no name) reaches us and is answered.
  std::string invoke = invoke_prefix_ + "#";
  if (!config_.shared_group.empty()) invoke = "$share/" + config_.shared_group + "/" + invoke;
  return {invoke, admin_prefix_ + "#"};
}

void Api::stop_taking_requests() {
  stopping_ = true;
  uploads_.join();
  admin_.join();
}

std::string Api::command_of(const std::string& topic) const {
  if (topic == invoke_root_ || starts_with(topic, invoke_prefix_)) return "invoke";
  if (!starts_with(topic, admin_prefix_)) return "";
  auto rest = topic.substr(admin_prefix_.size());
  return rest.substr(0, rest.find('/'));
}

void Api::handle(Message message, Ack ack) {
  if (route(message, ack)) ack();
}

bool Api::route(Message& message, Ack& ack) {
  const std::string& topic = message.topic;
  const std::string& payload = message.payload;
  ReplyTo& reply = message.reply;
  const std::string command = command_of(topic);
  if (!reply.topic.empty() && (starts_with(reply.topic, invoke_prefix_) || starts_with(reply.topic, admin_prefix_) ||
                               reply.topic == invoke_root_ || reply.topic.find_first_of("+#") != std::string::npos)) {
    // Answering there would turn a record into a request to ourselves (say, faas/admin/delete/x).
    reply.topic.clear();
    publish_error(topic, command, request_id_in(payload), ErrorCode::invalid_input,
                  "the Response Topic must be a topic name outside " + invoke_prefix_ + " and " + admin_prefix_,
                  reply);
    return true;
  }
  if (message.too_large || payload.size() > config_.max_payload_bytes) {
    publish_error(topic, command, make_request_id(), ErrorCode::invalid_input,
                  "the payload is larger than " + std::to_string(config_.max_payload_bytes) + " bytes", reply);
    return true;
  }
  if (message.retained && command != "upload") {
    // Kept by the broker from some time ago and handed to us at every subscription: running it again would
    // delete a function or re-run a call at each restart (docs/mqtt.md).
    spdlog::warn("ignoring a retained {} request on {}: only uploads are taken from retained messages",
                 command.empty() ? "unknown" : command, topic);
    return true;
  }
  if (command == "invoke") {
    if (topic == invoke_root_) {
      publish_error(topic, command, request_id_in(payload), ErrorCode::invalid_name,
                    "the topic names no function: use " + invoke_prefix_ + "{name}", reply);
      return true;
    }
    // Stopping: left unacknowledged, the request stays with the broker for our next start.
    if (stopping_.load()) return false;
    invoke(topic, topic.substr(invoke_prefix_.size()), payload, std::move(message.traceparent), std::move(reply),
           std::move(ack));
    return false;
  }
  if (starts_with(topic, admin_prefix_)) {
    // An empty message on an upload topic is how a client clears a retained upload (docs/mqtt.md); an upload
    // needs code anyway, so it is no command.
    if (payload.empty() && command == "upload") return true;
    administer(topic, payload, std::move(reply), message.retained);
    return true;
  }
  publish_error(topic, command, request_id_in(payload), ErrorCode::invalid_input, "no such command", reply);
  return true;
}

void Api::invoke(const std::string& topic, std::string name, const std::string& payload, std::string traceparent,
                 ReplyTo reply, Ack ack) {
  AcceptedRequest accepted;
  accepted.source = "mqtt";
  auto& request = accepted.request;
  request.function = std::move(name);
  try {
    parse_invoke_body(payload, request);
  } catch (const Error& e) {
    publish_error(topic, "invoke", request_id_in(payload), e.code(), e.what(), reply);
    return ack();
  }
  if (!traceparent.empty()) request.traceparent = std::move(traceparent);  // over the payload's
  if (request.request_id.empty()) request.request_id = make_request_id();
  json fields = json::parse(payload, nullptr, false);
  if (fields.is_object() && fields.value("async", false) == true) {
    return invoke_async(topic, std::move(request), fields, std::move(reply), std::move(ack));
  }
  accepted.reply = encode_reply(topic, reply);
  // Acknowledged once committed: from then on a crash cannot lose it (resume() answers it at the next start). It
  // runs meanwhile: the commit costs a request no latency.
  request.invocation_id = engine_.accept(accepted, [topic, ack = std::move(ack)](std::optional<Error> failure) {
    if (failure) {
      spdlog::error("{}: cannot keep the request in the inbox ({}); it runs, but a crash before its answer would "
                    "lose it", topic, failure->what());
    }
    ack();
  });
  run(std::move(request), topic, std::move(reply));
}

void Api::invoke_async(const std::string& topic, InvokeRequest request, const json& fields, ReplyTo reply, Ack ack) {
  AsyncOptions options;
  auto refuse = [&](const std::string& message) {
    publish_error(topic, "invoke", request.request_id, ErrorCode::invalid_input, message, reply);
    ack();
  };
  if (fields.contains("max_attempts")) {
    const auto& attempts = fields["max_attempts"];
    if (!attempts.is_number_unsigned() || attempts.get<unsigned>() < 1 || attempts.get<unsigned>() > 10) {
      return refuse("max_attempts must be a whole number from 1 to 10");
    }
    options.max_attempts = attempts.get<unsigned>();
  }
  if (fields.contains("idempotency_key")) {
    if (!fields["idempotency_key"].is_string()) return refuse("idempotency_key must be a string");
    options.idempotency_key = fields["idempotency_key"].get<std::string>();
  }
  options.reply = encode_reply(topic, reply);  // where the last attempt's record goes (serve_async in resume())
  // Taking it reads the store (the function, its settings, the idempotency key): not on the transport's thread.
  boost::asio::post(admin_, [this, topic, request = std::move(request), options = std::move(options),
                             reply = std::move(reply), ack = std::move(ack)]() mutable {
    auto answer_topic = invoke_answer_topic(request.function, reply);
    auto request_id = request.request_id;
    // Acknowledged to the broker, and answered "accepted", once the call is in the store.
    engine_.submit_async("mqtt", std::move(request), std::move(options),
                         [this, topic, answer_topic, request_id, reply, ack = std::move(ack)](Outcome<std::string> id) {
                           if (!id.ok()) {
                             publish_error(topic, "invoke", request_id, id.error().code(), id.error().what(), reply);
                           } else {
                             json answer{{"status", "accepted"}, {"id", id.value()}, {"request_id", request_id}};
                             publish_(answer_topic, answer.dump(), reply, {});
                           }
                           ack();
                         });
  });
}

std::string Api::invoke_answer_topic(const std::string& function, const ReplyTo& reply) const {
  return reply.topic.empty() ? config_.response_topic + "/invoke/" + function : reply.topic;
}

void Api::run(InvokeRequest request, const std::string& topic, ReplyTo reply) {
  if (request.version != 0) {
    // The first call of a kept version may write its files or build its virtualenv: not on the transport's thread.
    boost::asio::post(admin_, [this, request = std::move(request), topic, reply = std::move(reply)]() mutable {
      start(std::move(request), topic, std::move(reply));
    });
    return;
  }
  start(std::move(request), topic, std::move(reply));
}

void Api::start(InvokeRequest request, const std::string& topic, ReplyTo reply) {
  std::string answer_topic = invoke_answer_topic(request.function, reply);
  std::string request_id = request.request_id;
  std::string id = request.invocation_id;
  // A streaming function's chunks go where its record will, numbered, each as it is yielded (the prefix is made
  // at the first: most functions yield none).
  request.on_chunk = [this, answer_topic, reply, id, request_id, prefix = std::string(),
                      count = std::uint64_t{0}](std::string_view chunk) mutable {
    if (prefix.empty()) {
      prefix = R"({"id":)" + json(id).dump() + R"(,"request_id":)" +
               json(request_id).dump(-1, ' ', false, json::error_handler_t::replace) + R"(,"chunk":)";
    }
    publish_(answer_topic, prefix + std::to_string(++count) + R"(,"data":)" + std::string(chunk) + "}", reply, {});
  };
  engine_.invoke_async(std::move(request), [this, topic, answer_topic = std::move(answer_topic),
                                            request_id = std::move(request_id), reply = std::move(reply),
                                            id = std::move(id)](Outcome<InvocationResult> outcome) {
    auto settle = [this, id] { engine_.settle(id); };
    if (!outcome.ok()) {
      const Error& error = outcome.error();
      // Refused because we are stopping: it stays in the inbox and runs at the next start.
      if (error.code() == ErrorCode::shutting_down && stopping_.load()) return;
      return publish_error(topic, "invoke", request_id, error.code(), error.what(), reply, settle);
    }
    publish_(answer_topic, std::move(outcome.value().json), reply, settle);
  });
}

void Api::resume() {
  // Asynchronous calls: those left from before run now; each one's last record is published where the request
  // asked, as a synchronous call's would be.
  engine_.serve_async("mqtt", [this](const AsyncCall& call, const std::string& record) {
    try {
      auto [topic, reply] = decode_reply(call.options.reply);
      publish_(invoke_answer_topic(call.request.function, reply), record, reply, {});
    } catch (const json::exception& e) {
      spdlog::error("asynchronous call {}: its reply address is unreadable ({})", call.id, e.what());
    }
  });
  // Requests acknowledged and not answered: this node's from before its last stop, and in a cluster, later, those
  // of nodes that died (engine thread).
  engine_.take_up("mqtt", [this](std::vector<AcceptedRequest> unanswered) { answer(std::move(unanswered)); });
}

void Api::answer(std::vector<AcceptedRequest> unanswered) {
  std::size_t rerun = 0;
  for (auto& accepted : unanswered) {
    auto id = accepted.request.invocation_id;
    std::pair<std::string, ReplyTo> where;
    try {
      where = decode_reply(accepted.reply);
    } catch (const json::exception& e) {
      spdlog::error("dropping inbox entry {}: its reply address is unreadable ({})", id, e.what());
      engine_.settle(id);
      continue;
    }
    auto& [topic, reply] = where;
    if (auto record = engine_.record(id)) {
      // It ran and was recorded; only its answer may not have reached the broker.
      publish_(invoke_answer_topic(accepted.request.function, reply), std::move(*record), reply,
               [this, id] { engine_.settle(id); });
      continue;
    }
    ++rerun;
    run(std::move(accepted.request), topic, std::move(reply));
  }
  spdlog::info("answering {} requests accepted and not answered ({} run again, the rest from their records)",
               unanswered.size(), rerun);
}

void Api::administer(const std::string& topic, const std::string& payload, ReplyTo reply, bool retained) {
  std::string rest = topic.substr(admin_prefix_.size());
  auto slash = rest.find('/');
  std::string command = rest.substr(0, slash);
  std::string name = slash == std::string::npos ? "" : rest.substr(slash + 1);
  bool upload = command == "upload" || command == "rollback";  // both import code
  if (stopping_.load()) {
    return publish_error(topic, command, request_id_in(payload), ErrorCode::shutting_down,
                         "the server is shutting down", reply);
  }
  // Off the transport's thread: uploads may run pip for minutes, the rest reads the database.
  boost::asio::post(upload ? uploads_ : admin_, [this, topic, payload, command = std::move(command),
                                                 name = std::move(name), reply = std::move(reply), retained] {
    std::string request_id = request_id_in(payload);
    try {
      json request = parse_object(payload);
      if (auto it = request.find("request_id"); it != request.end() && it->is_string()) request_id = *it;
      if (retained && stale_upload(name, request)) return;
      auto answer = run_admin(command, name, request, request_id);
      publish_(reply.topic.empty() ? config_.response_topic + "/admin/" + command + (name.empty() ? "" : "/" + name)
                                   : reply.topic,
               std::move(answer), reply, {});
    } catch (const Error& e) {
      publish_error(topic, command, request_id, e.code(), e.what(), reply);
    } catch (const std::exception& e) {
      spdlog::error("{} failed: {}", topic, e.what());
      publish_error(topic, command, request_id, ErrorCode::internal, e.what(), reply);
    }
  });
}

bool Api::stale_upload(const std::string& name, const json& request) {
  std::optional<FunctionInfo> current;
  try {
    current = engine_.info(name);
  } catch (const Error&) {
    return false;  // new here: a node joining late gets the function
  }
  auto published = request.find("published_at");
  auto updated = unix_seconds(current->updated_at);
  if (published != request.end() && published->is_number() && updated && published->get<double>() > *updated) {
    return false;  // published after this node's version was made
  }
  spdlog::warn("ignoring the retained upload of {}: this node's version {} is as new or newer (give uploads a "
               "\"published_at\" to let a newer retained one replace it)", name, current->version);
  return true;
}

std::string Api::run_admin(const std::string& command, const std::string& name, const json& request,
                           const std::string& request_id) {
  auto need_name = [&] {
    if (name.empty()) throw Error(ErrorCode::invalid_name, "the topic names no function: use " + command + "/{name}");
  };
  if (command == "upload") {
    need_name();
    auto source = frontend::decode_upload(request);
    auto info = engine_.upload(name, source.code, source.requirements, source.settings);
    return json{{"status", "ok"}, {"function", info.name}, {"version", info.version}, {"request_id", request_id}}
        .dump();
  }
  if (command == "list") {
    json names = json::array();
    for (const auto& info : engine_.list()) names.push_back(info.name);
    return json{{"functions", names}, {"request_id", request_id}}.dump();
  }
  if (command == "status") {
    json status = engine_.status();
    status["request_id"] = request_id;
    return status.dump();
  }
  if (command == "nodes") {
    return json{{"nodes", engine_.nodes()}, {"request_id", request_id}}.dump();
  }
  if (command == "logs") {
    need_name();
    std::size_t limit = 1000;
    if (auto it = request.find("limit"); it != request.end()) {
      if (!it->is_number_integer() || it->get<long long>() < 0) {
        throw Error(ErrorCode::invalid_input, "limit must be a non-negative integer");
      }
      limit = it->get<std::size_t>();
    }
    auto records = join_json_array(engine_.logs(name, limit));
    return R"({"function":)" + json(name).dump() + R"(,"request_id":)" + json(request_id).dump() + R"(,"logs":)" +
           records + "}";
  }
  if (command == "versions") {
    need_name();
    return json{{"function", name}, {"versions", engine_.versions(name)}, {"request_id", request_id}}.dump();
  }
  if (command == "rollback") {
    need_name();
    auto it = request.find("version");
    if (it == request.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() == 0) {
      throw Error(ErrorCode::invalid_input, "send {\"version\": N}, N a kept version (see versions/{name})");
    }
    auto info = engine_.rollback(name, it->get<std::uint64_t>());
    return json{{"status", "ok"}, {"function", info.name}, {"version", info.version}, {"request_id", request_id}}
        .dump();
  }
  if (command == "settings") {
    // The payload is a merge patch of the settings (request_id aside); an empty one reads them.
    need_name();
    json patch = request;
    patch.erase("request_id");
    auto settings = patch.empty() ? engine_.settings(name) : engine_.update_settings(name, patch);
    return json{{"function", name}, {"settings", settings_view(settings, engine_.config())}, {"request_id", request_id}}
        .dump();
  }
  if (command == "delete") {
    need_name();
    engine_.remove(name);
    return json{{"status", "deleted"}, {"function", name}, {"request_id", request_id}}.dump();
  }
  throw Error(ErrorCode::invalid_input, "unknown command '" + command + "'");
}

void Api::publish_error(const std::string& topic, const std::string& command, const std::string& request_id,
                        ErrorCode code, const std::string& error, const ReplyTo& reply,
                        std::function<void()> delivered) {
  std::string payload = json{{"error", error},
                             {"code", to_string(code)},
                             {"topic", topic},
                             {"command", command},
                             {"request_id", request_id}}
                            .dump();
  if (!reply.topic.empty()) publish_(reply.topic, payload, reply, {});
  publish_(config_.response_topic + "/error", std::move(payload), ReplyTo{}, std::move(delivered));
  spdlog::info("{}: {}", topic, error);
}

}  // namespace faas::mqtt
