#include "async_calls.hpp"

#include <algorithm>
#include <future>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine_state.hpp"
#include "util/ids.hpp"
#include "util/names.hpp"

namespace faas {

namespace {

using nlohmann::json;

constexpr unsigned max_attempts_limit = 10;
constexpr std::size_t max_key_length = 256;
constexpr std::chrono::hours key_window{24};
constexpr std::chrono::minutes longest_retry_delay{10};
constexpr std::chrono::seconds busy_delay{1};  // before trying again a call the engine had no room for

std::string pending_source(const std::string& source) { return "async:" + source; }
std::string dead_source(const std::string& source) { return "dead:" + source; }

store::InboxEntry to_entry(const AsyncCall& call) {
  auto body = json::parse(invoke_body(call.request));
  body["attempt"] = call.attempt;
  body["max_attempts"] = call.max_attempts;
  body["attempts_per_round"] = call.options.max_attempts;
  if (!call.options.idempotency_key.empty()) body["idempotency_key"] = call.options.idempotency_key;
  if (!call.error.empty()) body["error"] = call.error;
  body["updated_at"] = call.updated_at;
  store::InboxEntry entry;
  entry.id = call.id;
  entry.source = call.dead ? dead_source(call.source) : pending_source(call.source);
  entry.function = call.request.function;
  entry.body = body.dump();
  entry.reply = call.options.reply;
  entry.replace = true;
  return entry;
}

std::optional<AsyncCall> from_entry(const store::InboxEntry& entry) {
  AsyncCall call;
  if (entry.source.starts_with("async:")) {
    call.source = entry.source.substr(6);
  } else if (entry.source.starts_with("dead:")) {
    call.source = entry.source.substr(5);
    call.dead = true;
  } else {
    return std::nullopt;  // another frontend's inbox
  }
  try {
    call.id = entry.id;
    call.request.function = entry.function;
    parse_invoke_body(entry.body, call.request);
    auto body = json::parse(entry.body);
    call.attempt = body.value("attempt", 1u);
    call.max_attempts = body.value("max_attempts", 1u);
    call.options.idempotency_key = body.value("idempotency_key", "");
    call.error = body.value("error", "");
    call.updated_at = body.value("updated_at", "");
    call.options.max_attempts = body.value("attempts_per_round", call.max_attempts);
    call.options.reply = entry.reply;
    return call;
  } catch (const std::exception& e) {
    spdlog::error("asynchronous call {} is unreadable in the store ({}); left there", entry.id, e.what());
    return std::nullopt;
  }
}

}  // namespace

std::string AsyncCalls::attempt_id(const std::string& id, unsigned attempt) {
  return attempt <= 1 ? id : id + "." + std::to_string(attempt);
}

AsyncCalls::AsyncCalls(EngineState& engine) : engine_(engine), runner_([this] { loop(); }) {}

AsyncCalls::~AsyncCalls() { stop(); }

void AsyncCalls::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (runner_.joinable()) runner_.join();
}

void AsyncCalls::serve(const std::string& source, Engine::AsyncFinished finished) {
  {
    std::lock_guard lock(mutex_);
    served_[source] = std::move(finished);
  }
  engine_.cluster->take_up(pending_source(source), [this, source](std::vector<store::InboxEntry> entries) {
    std::size_t taken = 0;
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // they stay this node's; leave() gives them up
    for (const auto& entry : entries) {
      if (auto call = from_entry(entry); call && !waiting_.contains(call->id)) {
        schedule(std::move(*call), {});
        ++taken;
      }
    }
    if (taken != 0) spdlog::info("{} asynchronous calls of {} taken up from the store", taken, source);
  });
}

void AsyncCalls::submit(const std::string& source, InvokeRequest request, AsyncOptions options,
                        std::function<void(Outcome<std::string>)> accepted) {
  AsyncCall call;
  try {
    check_function_name(request.function);
    if (!engine_.functions->find(request.function)) {
      throw Error(ErrorCode::not_found, "function '" + request.function + "' not found");
    }
    if (options.max_attempts > max_attempts_limit) {
      throw Error(ErrorCode::invalid_input, "an asynchronous call may have 1 to 10 attempts");
    }
    if (options.idempotency_key.size() > max_key_length) {
      throw Error(ErrorCode::invalid_input, "an idempotency key may hold at most 256 characters");
    }
    // Every attempt joins one trace: the caller's, or one begun here, whose parent span is the acceptance.
    if (!parse_traceparent(request.traceparent)) {
      request.traceparent = "00-" + make_trace_id() + "-" + make_span_id() + "-01";
    }
    if (options.max_attempts == 0) {
      auto settings = engine_.functions->settings(request.function);
      options.max_attempts = settings && settings->max_attempts ? *settings->max_attempts : default_max_attempts;
    }
    std::lock_guard lock(mutex_);
    if (stopping_ || !served_.contains(source)) {
      throw Error(ErrorCode::shutting_down, "asynchronous calls are not being taken");
    }
    // As many as the engine takes at once (running and queued); the store is no unbounded backlog.
    if (waiting_.size() + accepting_ >= engine_.max_in_flight) {
      throw Error(ErrorCode::overloaded, "too many asynchronous calls waiting; retry later");
    }
  } catch (const Error& e) {
    return accepted(e);
  }
  if (!options.idempotency_key.empty()) {
    const auto& key = options.idempotency_key;
    std::optional<std::string> first;
    {
      std::lock_guard lock(mutex_);
      if (auto found = keys_.find(key); found != keys_.end()) first = found->second;
    }
    if (!first) {
      try {
        first = engine_.log->keyed(key, key_window);
      } catch (const Error& e) {
        return accepted(e);
      }
    }
    if (first) return accepted(*first);  // the same call again: it starts nothing
  }
  if (request.request_id.empty()) request.request_id = make_request_id();  // the same in every attempt's record
  call.id = make_time_ordered_uuid();
  call.source = source;
  call.request = std::move(request);
  call.request.invocation_id.clear();
  call.max_attempts = options.max_attempts;
  call.options = std::move(options);
  call.updated_at = format_local_time(Invocation::Clock::now());
  auto entry = to_entry(call);
  entry.replace = false;
  entry.key = call.options.idempotency_key;
  {
    std::lock_guard lock(mutex_);
    if (!entry.key.empty()) {
      auto [it, inserted] = keys_.emplace(entry.key, call.id);
      if (!inserted) return accepted(it->second);  // a twin raced this one: it is the first
    }
    ++accepting_;
  }
  engine_.log->accept(std::move(entry), [this, call, accepted = std::move(accepted)](std::optional<Error> failure) {
    {
      std::lock_guard lock(mutex_);
      --accepting_;
      if (!call.options.idempotency_key.empty()) keys_.erase(call.options.idempotency_key);
      if (!failure && !stopping_) schedule(call, {});
    }
    if (failure) return accepted(*failure);
    accepted(call.id);
  });
}

void AsyncCalls::schedule(AsyncCall call, Clock::duration delay) {
  timetable_.emplace(Clock::now() + delay, call.id);
  auto id = call.id;
  waiting_.insert_or_assign(id, std::move(call));
  wake_.notify_all();
}

void AsyncCalls::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!finished_.empty()) {
      auto done = std::move(finished_.front());
      finished_.pop_front();
      lock.unlock();
      settle_attempt(std::move(done.call), std::move(done.outcome));
      lock.lock();
      continue;
    }
    if (!timetable_.empty() && timetable_.begin()->first <= Clock::now()) {
      auto id = timetable_.begin()->second;
      timetable_.erase(timetable_.begin());
      auto found = waiting_.find(id);
      if (found == waiting_.end()) continue;  // redriven or discarded meanwhile
      auto call = found->second;
      lock.unlock();
      attempt(std::move(call));
      lock.lock();
      continue;
    }
    if (timetable_.empty()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, timetable_.begin()->first);
    }
  }
}

void AsyncCalls::attempt(AsyncCall call) {
  auto record_id = attempt_id(call.id, call.attempt);
  // Its record is in the store already when the process died after the attempt but before the bookkeeping.
  try {
    if (auto json_text = engine_.log->find(record_id)) {
      InvocationResult result;
      auto parsed = json::parse(*json_text);
      result.record.id = record_id;
      result.record.function = call.request.function;
      if (parsed.value("status", "") != "success") {
        result.record.status = InvocationStatus::error;
        result.record.error = parsed.value("error", "failed");
      }
      result.json = std::move(*json_text);
      return settle_attempt(std::move(call), std::move(result));
    }
  } catch (const std::exception& e) {
    spdlog::warn("asynchronous call {}: {}; it runs again", call.id, e.what());
  }
  InvokeRequest request = call.request;
  request.invocation_id = record_id;
  request.attempt = call.attempt;
  engine_.start(std::move(request), [this, call](Outcome<InvocationResult> outcome) mutable {
    {
      std::lock_guard lock(mutex_);
      finished_.push_back(Finished{std::move(call), std::move(outcome)});
    }
    wake_.notify_all();
  });
}

std::chrono::milliseconds AsyncCalls::retry_delay(const AsyncCall& call) const {
  auto base = default_retry_delay;
  try {
    auto settings = engine_.functions->settings(call.request.function);
    if (settings && settings->retry_delay) base = *settings->retry_delay;
  } catch (const Error&) {
  }
  auto delay = base * (1LL << std::min(call.attempt - 1, 20u));  // before attempt k: base x 2^(k-2)
  return std::min<std::chrono::milliseconds>(delay / 2, longest_retry_delay);
}

void AsyncCalls::settle_attempt(AsyncCall call, Outcome<InvocationResult> outcome) {
  std::unique_lock lock(mutex_);
  if (stopping_) return;  // left in the store as it stands: the next start takes it up
  if (!outcome.ok()) {
    const auto& error = outcome.error();
    switch (error.code()) {
      case ErrorCode::overloaded:
      case ErrorCode::store_unavailable:
        return schedule(std::move(call), busy_delay);  // no attempt was used
      case ErrorCode::shutting_down:
        waiting_.erase(call.id);
        return;
      default:  // the function was deleted, or its pinned version is gone: no attempt can succeed
        call.error = error.what();
        call.dead = true;
        break;
    }
  } else if (outcome.value().record.ok()) {
    waiting_.erase(call.id);
    auto finished = served_[call.source];
    lock.unlock();
    // Reported once it has left the queue for everyone to see.
    engine_.log->settle(call.id, [finished, call, record = std::move(outcome.value().json)](std::optional<Error>) {
      if (finished) finished(call, record);
    });
    return;
  } else {
    call.error = outcome.value().record.error;
    call.dead = call.attempt >= call.max_attempts;
  }
  call.updated_at = format_local_time(Invocation::Clock::now());
  if (!call.dead) {
    ++call.attempt;
    keep(call);
    auto delay = retry_delay(call);
    return schedule(std::move(call), delay);
  }
  waiting_.erase(call.id);
  auto finished = served_[call.source];
  lock.unlock();
  spdlog::warn("asynchronous call {} of function {} failed {} times and is a dead letter: {}", call.id,
               call.request.function, call.attempt, call.error);
  std::string record;
  if (outcome.ok()) {
    record = outcome.value().json;
  } else {
    // Refused before it ran: no record was made, so the frontend gets one in the records' shape.
    record = json{{"id", call.id}, {"function", call.request.function}, {"request_id", call.request.request_id},
                  {"status", "error"}, {"error", call.error}, {"error_type", "Refused"}, {"attempt", call.attempt}}
                 .dump();
  }
  // Reported once it is among the dead letters for everyone to see.
  keep(call, [finished, call, record = std::move(record)] {
    if (finished) finished(call, record);
  });
}

void AsyncCalls::keep(const AsyncCall& call, std::function<void()> then) {
  engine_.log->accept(to_entry(call), [id = call.id, then = std::move(then)](std::optional<Error> failure) {
    if (failure) spdlog::warn("asynchronous call {}: its state could not be kept: {}", id, failure->what());
    if (then) then();
  });
}

std::optional<AsyncCall> AsyncCalls::find(std::string_view id) const {
  {
    std::lock_guard lock(mutex_);
    if (auto found = waiting_.find(std::string(id)); found != waiting_.end()) return found->second;
  }
  auto entry = engine_.log->inbox_entry(std::string(id));
  return entry ? from_entry(*entry) : std::nullopt;
}

std::vector<AsyncCall> AsyncCalls::dead() const {
  std::vector<AsyncCall> out;
  for (const auto& entry : engine_.log->inbox("dead:", true)) {
    if (auto call = from_entry(entry)) out.push_back(std::move(*call));
  }
  return out;
}

void AsyncCalls::redrive(std::string_view id) {
  auto call = find(id);
  if (!call || !call->dead) throw Error(ErrorCode::not_found, "no dead letter " + std::string(id));
  // Another round of attempts, numbered on from the last: each attempt keeps a record id of its own.
  call->dead = false;
  call->attempt += 1;
  call->max_attempts = call->attempt - 1 + std::max(call->options.max_attempts, 1u);
  call->updated_at = format_local_time(Invocation::Clock::now());
  std::promise<std::optional<Error>> kept;
  engine_.log->accept(to_entry(*call), [&kept](std::optional<Error> failure) { kept.set_value(failure); });
  if (auto failure = kept.get_future().get()) throw *failure;
  std::lock_guard lock(mutex_);
  if (served_.contains(call->source) && !stopping_) schedule(std::move(*call), {});
}

void AsyncCalls::discard(std::string_view id) {
  auto call = find(id);
  if (!call || !call->dead) throw Error(ErrorCode::not_found, "no dead letter " + std::string(id));
  std::promise<std::optional<Error>> settled;
  engine_.log->settle(call->id, [&settled](std::optional<Error> failure) { settled.set_value(failure); });
  if (auto failure = settled.get_future().get()) throw *failure;
}

}  // namespace faas
