// service.cpp — authentication, the engine calls behind each RPC, and the mapping of engine errors to statuses.
#include "service.hpp"

#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace faas::grpc_frontend {
namespace {

using nlohmann::json;

grpc::Status from_error(grpc::CallbackServerContext& context, const Error& error) {
  context.AddTrailingMetadata("faas-error-code", std::string(to_string(error.code())));
  return grpc::Status(status_code(error.code()), error.what());
}

grpc::Status unauthenticated() {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "send the admin's credentials as metadata: authorization: Basic base64(user:password)");
}

void fill(v1::Record& out, const Invocation& record, std::string json_text) {
  out.set_id(record.id);
  out.set_function(record.function);
  out.set_status(record.ok() ? "success" : "error");
  if (record.ok()) out.set_result_json(record.result);
  out.set_error(record.error);
  out.set_error_type(record.error_type);
  out.set_duration_ms(record.duration_ms);
  out.set_version(record.version);
  out.set_request_id(record.request_id);
  out.set_json(std::move(json_text));
}

// A record read back as JSON text (the logs), its fields taken from the text.
v1::Record record_message(std::string json_text) {
  v1::Record out;
  json record = json::parse(json_text, nullptr, false);
  if (record.is_object()) {
    auto text = [&record](const char* key) {
      auto it = record.find(key);
      return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    out.set_id(text("id"));
    out.set_function(text("function"));
    out.set_status(text("status"));
    if (auto result = record.find("result"); result != record.end() && out.status() == "success") {
      out.set_result_json(result->dump(-1, ' ', false, json::error_handler_t::replace));
    }
    out.set_error(text("error"));
    out.set_error_type(text("error_type"));
    if (auto duration = record.find("duration_ms"); duration != record.end() && duration->is_number()) {
      out.set_duration_ms(duration->get<double>());
    }
    if (auto version = record.find("version"); version != record.end() && version->is_number_unsigned()) {
      out.set_version(version->get<std::uint64_t>());
    }
    out.set_request_id(text("request_id"));
  }
  out.set_json(std::move(json_text));
  return out;
}

void fill(v1::FunctionInfo& out, const FunctionInfo& info) {
  out.set_name(info.name);
  out.set_version(info.version);
  out.set_created_at(info.created_at);
  out.set_updated_at(info.updated_at);
  out.set_has_requirements(info.has_requirements);
  out.set_code_sha256(info.code_sha256);
}

// A server-streaming call's writer: messages are queued from any thread and written one at a time, then the
// status. It deletes itself when gRPC is done with the call. A client that leaves more than max_waiting_bytes
// unread ends its call (RESOURCE_EXHAUSTED) rather than holding the server's memory.
template <class Message>
class StreamWriter final : public grpc::ServerWriteReactor<Message> {
 public:
  static constexpr std::size_t max_waiting_bytes = 8u << 20;

  // `on_end` runs once, on a gRPC thread, when the client cancelled or the call is over: whoever still holds a
  // pointer to this writer must drop it there.
  explicit StreamWriter(std::function<void()> on_end = {}) : on_end_(std::move(on_end)) {}

  void write(Message message) {
    std::lock_guard lock(mutex_);
    if (finishing_) return;
    waiting_bytes_ += message.ByteSizeLong();
    if (waiting_bytes_ > max_waiting_bytes) {
      waiting_.clear();
      waiting_bytes_ = 0;
      finishing_ = true;
      status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "the client did not read its stream in time");
    } else {
      waiting_.push_back(std::move(message));
    }
    pump();
  }

  // Ends the call with `status` once what is queued is written. Later calls of write() and finish() are ignored.
  void finish(grpc::Status status) {
    std::lock_guard lock(mutex_);
    if (finishing_) return;
    finishing_ = true;
    status_ = std::move(status);
    pump();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    writing_ = false;
    if (!ok) {  // the client is gone: nothing more will be written
      waiting_.clear();
      finishing_ = true;
    }
    pump();
  }

  void OnCancel() override { end(); }

  void OnDone() override {
    end();
    delete this;
  }

 private:
  void end() {
    std::function<void()> on_end;
    {
      std::lock_guard lock(mutex_);
      on_end.swap(on_end_);
    }
    if (on_end) on_end();
    finish(grpc::Status::CANCELLED);  // a cancelled call still needs its Finish
  }

  void pump() {  // mutex_ held
    if (writing_ || finished_) return;
    if (!waiting_.empty()) {
      current_ = std::move(waiting_.front());
      waiting_.pop_front();
      waiting_bytes_ -= std::min(waiting_bytes_, current_.ByteSizeLong());
      writing_ = true;
      this->StartWrite(&current_);
    } else if (finishing_) {
      finished_ = true;
      this->Finish(status_);
    }
  }

  std::recursive_mutex mutex_;  // gRPC may run a reaction on the thread that started the operation
  std::function<void()> on_end_;
  std::deque<Message> waiting_;
  std::size_t waiting_bytes_ = 0;
  Message current_;
  bool writing_ = false, finishing_ = false, finished_ = false;
  grpc::Status status_;
};

// What the engine's threads may still call after a streamed call ended: they reach the writer through this,
// which forgets it when the call ends.
template <class Message>
struct WriterLink {
  std::mutex mutex;
  StreamWriter<Message>* writer = nullptr;
  std::shared_ptr<RecordFollower> follower;

  template <class F>
  void with_writer(F&& f) {
    std::lock_guard lock(mutex);
    if (writer != nullptr) f(*writer);
  }
  void forget() {
    std::lock_guard lock(mutex);
    writer = nullptr;
  }
};

template <class Message>
std::pair<StreamWriter<Message>*, std::shared_ptr<WriterLink<Message>>> make_writer() {
  auto link = std::make_shared<WriterLink<Message>>();
  auto* writer = new StreamWriter<Message>([link] { link->forget(); });
  link->writer = writer;
  return {writer, link};
}

}  // namespace

grpc::StatusCode status_code(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_name:
    case ErrorCode::invalid_input:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::not_found:
      return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::build_failed:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorCode::overloaded:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::shutting_down:
    case ErrorCode::store_unavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case ErrorCode::internal:
      break;
  }
  return grpc::StatusCode::INTERNAL;
}

std::chrono::milliseconds deadline_timeout(std::chrono::milliseconds remaining) noexcept {
  // A twentieth of what is left, at least 5 ms and at most 100 ms: the record's way back to the caller.
  auto margin = std::clamp(remaining / 20, std::chrono::milliseconds(5), std::chrono::milliseconds(100));
  return remaining - margin;
}

Service::Service(Engine& engine, const GrpcConfig& config)
    : engine_(engine), config_(config), auth_(config.user, config.password), blocking_(config.blocking_threads) {}

Service::~Service() { blocking_.join(); }

bool Service::is_admin(const grpc::CallbackServerContext& context) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  return it != metadata.end() && auth_.check(std::string_view(it->second.data(), it->second.size()));
}

bool Service::may_invoke(const grpc::CallbackServerContext& context, const std::string& function) const {
  if (engine_.is_public(function).value_or(config_.public_invoke)) return true;
  return is_admin(context);
}

InvokeRequest Service::invoke_request(const grpc::CallbackServerContext& context,
                                      const v1::InvokeRequest& request) const {
  InvokeRequest out;
  out.function = request.function();
  out.args = request.args_json().empty() ? "[]" : request.args_json();
  out.kwargs = request.kwargs_json();
  // Each must be one JSON value on its own (so that neither can reach into the other), then the same checks as
  // an HTTP body's: arguments an array, keywords an object. Texts are kept as sent: integers of any size stay exact.
  if (!json::accept(out.args)) throw Error(ErrorCode::invalid_input, "args_json is not one JSON value");
  if (!out.kwargs.empty() && !json::accept(out.kwargs)) {
    throw Error(ErrorCode::invalid_input, "kwargs_json is not one JSON value");
  }
  InvokeRequest checked;
  parse_invoke_body(R"({"args":)" + out.args + (out.kwargs.empty() ? "" : R"(,"kwargs":)" + out.kwargs) + "}",
                    checked);
  out.args = std::move(checked.args);
  out.kwargs = std::move(checked.kwargs);
  out.request_id = request.request_id();
  out.version = request.version();
  out.traceparent = request.traceparent();
  if (out.traceparent.empty()) {
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find("traceparent"); it != metadata.end()) {
      out.traceparent.assign(it->second.data(), it->second.size());
    }
  }
  if (context.deadline() != std::chrono::system_clock::time_point::max()) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(context.deadline() -
                                                                           std::chrono::system_clock::now());
    out.timeout = deadline_timeout(remaining);
    if (out.timeout.count() <= 0) throw Error(ErrorCode::invalid_input, "the call's deadline leaves no time to run");
  }
  return out;
}

std::optional<InvokeRequest> Service::take_call(grpc::CallbackServerContext& context,
                                               const v1::InvokeRequest& request,
                                               const std::function<void(grpc::Status)>& refuse) const {
  if (!may_invoke(context, request.function())) {
    refuse(unauthenticated());
    return std::nullopt;
  }
  try {
    return invoke_request(context, request);
  } catch (const Error& e) {
    refuse(from_error(context, e));
    return std::nullopt;
  }
}

void Service::run_call(InvokeRequest call, std::function<void(InvokeRequest)> run) {
  if (call.version == 0) return run(std::move(call));
  // The first call of a kept version may write its files or build its virtualenv: off gRPC's threads.
  boost::asio::post(blocking_, [run = std::move(run), call = std::move(call)]() mutable { run(std::move(call)); });
}

grpc::ServerUnaryReactor* Service::Invoke(grpc::CallbackServerContext* context, const v1::InvokeRequest* request,
                                          v1::Record* reply) {
  auto* reactor = context->DefaultReactor();
  auto call = take_call(*context, *request, [reactor](grpc::Status status) { reactor->Finish(std::move(status)); });
  if (!call) return reactor;
  run_call(std::move(*call), [this, context, reactor, reply](InvokeRequest call) {
    engine_.invoke_async(std::move(call), [context, reactor, reply](Outcome<InvocationResult> outcome) {
      if (!outcome.ok()) return reactor->Finish(from_error(*context, outcome.error()));
      fill(*reply, outcome.value().record, std::move(outcome.value().json));
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::InvokeEvent>* Service::InvokeStream(grpc::CallbackServerContext* context,
                                                                 const v1::InvokeRequest* request) {
  auto [writer, link] = make_writer<v1::InvokeEvent>();
  auto call = take_call(*context, *request, [writer = writer](grpc::Status status) { writer->finish(std::move(status)); });
  if (!call) return writer;
  auto chunks = std::make_shared<std::atomic<std::uint64_t>>(0);
  call->on_chunk = [link = link, chunks](std::string_view data) {
    v1::InvokeEvent event;
    event.mutable_chunk()->set_index(chunks->fetch_add(1) + 1);
    event.mutable_chunk()->set_data_json(std::string(data));
    link->with_writer([&event](auto& w) { w.write(std::move(event)); });
  };
  run_call(std::move(*call), [this, context, link = link](InvokeRequest call) {
    engine_.invoke_async(std::move(call), [context, link](Outcome<InvocationResult> outcome) {
      link->with_writer([&](auto& w) {
        if (!outcome.ok()) return w.finish(from_error(*context, outcome.error()));
        v1::InvokeEvent event;
        fill(*event.mutable_record(), outcome.value().record, std::move(outcome.value().json));
        w.write(std::move(event));
        w.finish(grpc::Status::OK);
      });
    });
  });
  return writer;
}

grpc::ServerUnaryReactor* Service::offload(grpc::CallbackServerContext* context, std::function<void()> work) {
  auto* reactor = context->DefaultReactor();
  if (!is_admin(*context)) {
    reactor->Finish(unauthenticated());
    return reactor;
  }
  boost::asio::post(blocking_, [context, reactor, work = std::move(work)] {
    try {
      work();
      reactor->Finish(grpc::Status::OK);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::build_failed) spdlog::warn("upload failed: {}", e.what());
      reactor->Finish(from_error(*context, e));
    } catch (const std::exception& e) {
      spdlog::error("request failed: {}", e.what());
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, e.what()));
    }
  });
  return reactor;
}

grpc::ServerUnaryReactor* Service::Upload(grpc::CallbackServerContext* context, const v1::UploadRequest* request,
                                          v1::FunctionInfo* reply) {
  return offload(context, [this, request, reply] {
    json settings;  // null: unchanged
    if (!request->settings_json().empty()) {
      settings = json::parse(request->settings_json(), nullptr, false);
      if (!settings.is_object()) throw Error(ErrorCode::invalid_input, "settings_json must be a JSON object");
    }
    std::optional<std::string_view> requirements;
    if (request->has_requirements()) requirements = request->requirements();
    fill(*reply, engine_.upload(request->name(), request->code(), requirements, settings));
  });
}

grpc::ServerUnaryReactor* Service::List(grpc::CallbackServerContext* context, const v1::ListRequest*,
                                        v1::ListReply* reply) {
  return offload(context, [this, reply] {
    for (const auto& info : engine_.list()) fill(*reply->add_functions(), info);
  });
}

grpc::ServerUnaryReactor* Service::Delete(grpc::CallbackServerContext* context, const v1::DeleteRequest* request,
                                          v1::DeleteReply*) {
  return offload(context, [this, request] { engine_.remove(request->name()); });
}

grpc::ServerUnaryReactor* Service::Status(grpc::CallbackServerContext* context, const v1::StatusRequest*,
                                          v1::StatusReply* reply) {
  return offload(context, [this, reply] {
    json status = engine_.status();
    status["status"] = "ok";
    reply->set_json(status.dump());
  });
}

grpc::ServerWriteReactor<v1::Record>* Service::Logs(grpc::CallbackServerContext* context,
                                                    const v1::LogsRequest* request) {
  auto [writer, link] = make_writer<v1::Record>();
  if (!is_admin(*context)) {
    writer->finish(unauthenticated());
    return writer;
  }
  boost::asio::post(blocking_, [this, context, link = link, function = request->function(),
                                limit = request->limit(), follow = request->follow(), after = request->after()] {
    try {
      std::string resume_after = after;
      const std::size_t backlog = limit != 0 ? limit : (follow ? 0 : 1000);
      if (!follow || (backlog > 0 && after.empty())) {
        for (auto& text : engine_.logs(function, backlog)) {
          auto record = record_message(std::move(text));
          if (!record.id().empty()) resume_after = record.id();
          link->with_writer([&record](auto& w) { w.write(std::move(record)); });
        }
      } else {
        engine_.info(function);  // Error(not_found) before following nothing
      }
      if (!follow) return link->with_writer([](auto& w) { w.finish(grpc::Status::OK); });
      FollowOptions options;
      options.function = function;
      options.after = std::move(resume_after);
      // Each wake moves what waits into the stream; a follower that fell behind ends it (follow again after the
      // last id received).
      std::weak_ptr<WriterLink<v1::Record>> weak = link;
      auto pump = [weak] {
        auto link = weak.lock();
        if (!link) return;
        link->with_writer([&link](auto& w) {
          if (!link->follower) return;
          for (const auto& record : link->follower->take()) w.write(record_message(record->json));
          if (link->follower->dropped()) {
            w.finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "the stream fell behind; follow again after the last record's id"));
          }
        });
      };
      auto follower = engine_.follow(std::move(options), pump);
      {
        std::lock_guard lock(link->mutex);
        link->follower = std::move(follower);
      }
      pump();  // what came before the follower was attached
    } catch (const Error& e) {
      link->with_writer([&](auto& w) { w.finish(from_error(*context, e)); });
    }
  });
  return writer;
}

}  // namespace faas::grpc_frontend
