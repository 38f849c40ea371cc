#include "events.hpp"

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

}  // namespace faas::http
