// This server among those sharing the store (docs/scaling.md). Every second (every 30 s on SQLite) it writes its
// heartbeat to the nodes table, which keeps its inbox entries (acknowledged requests, asynchronous calls) its own;
// in a cluster it takes up the entries of nodes whose heartbeats stopped for longer than the lease, and of nodes that stopped cleanly
// and gave theirs up; and it tries an unreachable store again, so that invocations resume once it is back.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "faas/status.hpp"
#include "store/record_store.hpp"

namespace faas {

struct EngineState;

class Cluster {
 public:
  using Handler = std::function<void(std::vector<store::InboxEntry>)>;

  explicit Cluster(EngineState& engine);
  ~Cluster();

  // Calls `handler` with the inbox entries of `source` this node takes up: at once (on the calling thread) those
  // left from before (its own, and in a cluster those no live node holds), then (on the cluster's thread) those of
  // nodes that die. Throws Error.
  void take_up(const std::string& source, Handler handler);
  // Stops taking up others' entries (the engine drains).
  void stop_taking();
  // Stops the heartbeats; in a cluster, gives this node's remaining entries up and leaves the nodes table. Call
  // once the log has committed everything. Idempotent.
  void leave();

  std::vector<NodeInfo> nodes() const;
  std::size_t live_nodes() const { return live_nodes_.load(std::memory_order_relaxed); }

 private:
  void loop();
  void beat();

  EngineState& engine_;
  std::string started_at_;
  std::atomic<std::size_t> live_nodes_{1};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, Handler> handlers_;  // by source
  bool taking_ = true;
  bool released_ = false;  // another node gave its entries up: take them now, not at the next heartbeat
  bool stopping_ = false;
  bool beat_failed_ = false;
  std::thread thread_;
};

}  // namespace faas
