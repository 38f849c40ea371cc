#include "events.hpp"

#include "api.hpp"

#include <utility>

namespace faas::http {

std::string sse_event(std::string_view data, std::string_view id, std::string_view event) {
  std::string out;
  out.reserve(data.size() + id.size() + event.size() + 32);
  if (!event.empty()) out.append("event: ").append(event).push_back('\n');
  if (!id.empty()) out.append("id: ").append(id).push_back('\n');
  for (;;) {
    auto end = data.find_first_of("\r\n");
    out.append("data: ").append(data.substr(0, end)).push_back('\n');
    if (end == std::string_view::npos) break;
    if (data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n') ++end;
    data.remove_prefix(end + 1);
  }
  out.push_back('\n');
  return out;
}

RecordEvents::RecordEvents(std::string backlog) : backlog_(std::move(backlog)) {}

std::function<void()> RecordEvents::waker() {
  return [wake = wake_] {
    std::lock_guard lock(wake->mutex);
    if (wake->call) wake->call();
  };
}

void RecordEvents::attach(std::shared_ptr<RecordFollower> follower) { follower_ = std::move(follower); }

void RecordEvents::start(std::function<void()> wake) {
  std::lock_guard lock(wake_->mutex);
  wake_->call = std::move(wake);
}

std::string RecordEvents::take(bool& ended) {
  std::string out = std::exchange(backlog_, {});
  if (ended_ || !follower_) {
    ended = true;
    return out;
  }
  for (const auto& record : follower_->take()) out += sse_event(record->json, record->id);
  if (follower_->dropped()) {
    out += sse_event(R"({"message":"this client fell too far behind; reconnect with Last-Event-ID to go on"})", {},
                     "dropped");
    ended_ = true;
  }
  return out;
}

CallStream::CallStream(bool events, std::function<void(Response)> answer)
    : events_(events), answer_(std::move(answer)) {}

void CallStream::begin() {
  std::function<void(Response)> answer;
  {
    std::lock_guard lock(mutex_);
    answer = std::exchange(answer_, {});
    if (!answer) return;  // answered already: refused, finished, or its first chunk came
    pending_.insert(0, ": streaming\n\n");  // the comment makes the stream start at once
  }
  Response response;
  response.content_type = "text/event-stream";
  response.events = shared_from_this();
  answer(std::move(response));
}

void CallStream::chunk(std::string_view json) {
  std::function<void(Response)> answer;
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    ++chunks_;
    if (events_) {
      pending_ += sse_event(json, {}, "chunk");
    } else {
      pending_.append(R"({"chunk":)").append(std::to_string(chunks_)).append(R"(,"data":)").append(json).append("}\n");
    }
    answer = std::exchange(answer_, {});
    if (!answer) wake = wake_;
  }
  if (answer) {  // the first chunk came before the stream began (or, for NDJSON, it begins it)
    Response response;
    response.content_type = events_ ? "text/event-stream" : "application/x-ndjson";
    response.events = shared_from_this();
    answer(std::move(response));
  } else if (wake) {
    wake();
  }
}

void CallStream::finish(Response response) {
  std::function<void(Response)> answer;
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    answer = std::exchange(answer_, {});
    if (answer && events_ && response.status == 200) {  // finished before the stream began: still a stream
      pending_ = ": streaming\n\n" + sse_event(response.body, {}, "record");
      ended_ = true;
      Response stream;
      stream.content_type = "text/event-stream";
      stream.events = shared_from_this();
      response = std::move(stream);
    } else if (!answer) {
      if (events_) {
        pending_ += sse_event(response.body, {}, response.status == 200 ? "record" : "error");
      } else {
        pending_.append(response.body).push_back('\n');
      }
      ended_ = true;
      wake = wake_;
    }
  }
  if (answer) return answer(std::move(response));  // nothing was streamed: the whole answer, as usual
  if (wake) wake();
}

void CallStream::start(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
}

std::string CallStream::take(bool& ended) {
  std::lock_guard lock(mutex_);
  ended = ended_ && pending_.empty();
  return std::exchange(pending_, {});
}

}  // namespace faas::http
