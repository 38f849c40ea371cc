#include "cluster.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine_state.hpp"

namespace faas {

namespace {

// A cluster needs a heartbeat a second (its lease is a few of them); one server on SQLite only lists itself and
// the servers sharing its data dir, and an edge box's flash should not take a write a second for that.
std::chrono::seconds beat_interval(bool clustered) {
  return clustered ? std::chrono::seconds(1) : std::chrono::seconds(30);
}
constexpr std::size_t orphans_per_round = 256;

std::string local_time_of(double epoch_seconds) {
  auto since = std::chrono::duration_cast<Invocation::Clock::duration>(std::chrono::duration<double>(epoch_seconds));
  return format_local_time(Invocation::Clock::time_point(since));
}

}  // namespace

Cluster::Cluster(EngineState& engine)
    : engine_(engine), started_at_(format_local_time(Invocation::Clock::now())) {
  beat();  // at once: the node is listed, and its entries are its own, before it takes any
  engine_.functions->on_released([this] {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    wake_.notify_all();
  });
  thread_ = std::thread([this] { loop(); });
}

Cluster::~Cluster() { leave(); }

void Cluster::take_up(const std::string& source, Handler handler) {
  auto entries = engine_.log->store().adopt(source);
  {
    std::lock_guard lock(mutex_);
    handlers_[source] = handler;
  }
  if (!entries.empty()) handler(std::move(entries));
}

void Cluster::stop_taking() {
  std::lock_guard lock(mutex_);
  taking_ = false;
}

void Cluster::leave() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  engine_.functions->on_released({});
  try {
    // Another node takes them at once instead of after the lease.
    if (engine_.clustered) engine_.log->store().release_entries();
    engine_.functions->leave(engine_.config.node_id);
  } catch (const Error& e) {
    spdlog::warn("leaving the cluster: {}", e.what());
  }
}

void Cluster::beat() {
  auto& engine = engine_;
  auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - engine.started);
  nlohmann::json status{{"in_flight", engine.in_flight.load()},
                        {"invocations", engine.completed.load()},
                        {"errors", engine.failed.load()},
                        {"isolation", to_string(engine.config.isolation)},
                        {"uptime", uptime.count()}};
  try {
    engine.functions->heartbeat(engine.config.node_id, started_at_, status.dump());
    if (engine.clustered) {
      auto lease = engine.config.node_lease;
      std::size_t live = 0;
      for (const auto& node : engine.functions->nodes(std::chrono::ceil<std::chrono::seconds>(lease))) {
        if (node.seen_seconds_ago * 1000 <= static_cast<double>(lease.count())) ++live;
      }
      live_nodes_ = std::max<std::size_t>(live, 1);
    }
    if (beat_failed_) spdlog::info("heartbeats reach the store again");
    beat_failed_ = false;
  } catch (const Error& e) {
    if (!beat_failed_) spdlog::warn("cannot write this node's heartbeat: {}", e.what());
    beat_failed_ = true;
  }
}

void Cluster::loop() {
  const auto interval = beat_interval(engine_.clustered);
  auto next_beat = std::chrono::steady_clock::now() + interval;  // the constructor beat
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_until(lock, next_beat, [this] { return stopping_ || released_; });
    if (stopping_) break;
    released_ = false;
    if (auto now = std::chrono::steady_clock::now(); now >= next_beat) {
      next_beat = now + interval;
      lock.unlock();
      beat();
      if (!engine_.log->available()) engine_.log->store().probe();
      lock.lock();
    }
    if (!engine_.clustered || !taking_ || beat_failed_ || handlers_.empty()) continue;
    std::vector<std::string> sources;
    for (const auto& [source, handler] : handlers_) sources.push_back(source);
    auto handlers = handlers_;
    lock.unlock();
    try {
      auto orphans = engine_.log->store().take_orphans(sources, orphans_per_round);
      std::map<std::string, std::vector<store::InboxEntry>> by_source;
      for (auto& entry : orphans) by_source[entry.source].push_back(std::move(entry));
      for (auto& [source, entries] : by_source) {
        spdlog::info("taking up {} entries of {} left by other nodes", entries.size(), source);
        handlers[source](std::move(entries));
      }
    } catch (const Error& e) {
      spdlog::warn("cannot take up other nodes' inbox entries: {}", e.what());
    }
    lock.lock();
  }
}

std::vector<NodeInfo> Cluster::nodes() const {
  std::vector<NodeInfo> out;
  // Alive within the lease (SQLite: two heartbeats); listed a minute longer, as not alive, so that a node that
  // just died shows as such.
  auto lease = engine_.clustered ? engine_.config.node_lease
                                 : std::chrono::milliseconds(2 * beat_interval(false) + std::chrono::seconds(5));
  for (auto& row : engine_.functions->nodes(std::chrono::ceil<std::chrono::seconds>(lease) + std::chrono::seconds(60))) {
    NodeInfo node;
    node.id = std::move(row.id);
    node.self = node.id == engine_.config.node_id;
    node.alive = row.seen_seconds_ago * 1000 <= static_cast<double>(lease.count());
    node.started_at = std::move(row.started_at);
    node.seen_at = local_time_of(row.seen_at);
    node.seen_seconds_ago = row.seen_seconds_ago;
    node.status = std::move(row.status);
    out.push_back(std::move(node));
  }
  return out;
}

}  // namespace faas
