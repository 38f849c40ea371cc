// faas/status.hpp — a server's health at one moment: what Engine::status() returns and /admin/status shows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace faas {

struct SystemMemory {
  double total_mb = 0, available_mb = 0, used_mb = 0, percent = 0;
};

struct Status {
  double uptime_seconds = 0;
  double cpu_percent = 0;        // whole machine, since the previous status() (psutil.cpu_percent())
  double ram_percent = 0;        // whole machine (psutil.virtual_memory().percent)
  double process_cpu_percent = 0;  // this process, since the previous status(); 100 = one core
  double process_milicpu = 0;    // the same in milli-CPU: 1000 = one core
  double process_rss_mb = 0;
  SystemMemory system_memory;
  std::size_t loaded_functions = 0;
  std::uint64_t invocations = 0;         // completed since start
  std::uint64_t invocation_errors = 0;   // of which status "error"
  std::uint64_t in_flight = 0;           // accepted, not yet completed
  std::uint64_t queued = 0;              // of which waiting for an executor thread
  std::uint64_t scheduled = 0;           // calls fired by functions' schedules since start
  std::size_t workers = 0;               // worker processes alive (process isolation; 0 in-process)
  std::size_t workers_busy = 0;          // of which running calls or starting
  std::string isolation;
  std::string timestamp;                 // local time, "YYYY-MM-DD HH:MM:SS.ffffff"
  std::string node;                      // this server's node id
  std::string store;                     // "sqlite" or "postgresql"
  std::size_t nodes = 1;                 // nodes sharing the store whose heartbeats are within their lease
};

// A server sharing the store (Engine::nodes(), GET /admin/nodes), as its last heartbeat left it.
struct NodeInfo {
  std::string id;
  bool self = false;           // the server answering
  bool alive = false;          // its last heartbeat is within the lease; otherwise its work is being taken over
  std::string started_at;      // local time
  std::string seen_at;         // local time of its last heartbeat
  double seen_seconds_ago = 0;
  std::string status;          // JSON object text: its counters at that heartbeat
};

// The shape both original servers answered: status, uptime, cpu_percent, ram_percent, loaded_functions,
// cpu_usage_absolute.process_milicpu, memory_usage_absolute.process_rss_mb, system_memory_info, timestamp, plus
// invocation counters and the isolation. "status" is "running", as the original paho-mqtt server said; the HTTP
// frontend says "ok" there, as the original Flask server did.
void to_json(nlohmann::json& out, const Status& status);
void to_json(nlohmann::json& out, const NodeInfo& node);

}  // namespace faas
