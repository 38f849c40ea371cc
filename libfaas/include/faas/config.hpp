// faas/config.hpp — how an Engine is set up: plain structs with their defaults, filled by each program's
// command line (or by an embedding program) and read everywhere else.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace faas {

enum class Isolation { inprocess, process };
std::string_view to_string(Isolation isolation) noexcept;
Isolation parse_isolation(std::string_view text);  // throws Error(invalid_input)

// What a sandboxed function's network is: the host's, or a namespace of its own with only loopback.
enum class FunctionNetwork { host, none };
FunctionNetwork parse_function_network(std::string_view text);  // throws Error(invalid_input)

// Process isolation (Isolation::process): each function runs in warm `faas-worker` processes of its own.
struct WorkerConfig {
  unsigned min_per_function = 1;   // kept running once a function has been used (until it is deleted)
  unsigned max_per_function = 4;   // running a function's calls at once
  // Workers across all functions; past it the least recently used idle worker stops to make room (even a
  // function's last one). 0: one per 64 MB of the machine's memory, from 8 to 512.
  unsigned max_total = 0;
  unsigned spares = 1;             // started ahead with Python up and no function, so an upload loads at once
  std::chrono::seconds idle_timeout{60};  // a worker beyond the minimum that ran nothing this long is stopped
  std::size_t memory_limit_mb = 1024;     // address space per worker (RLIMIT_AS); 0 = no limit
  std::size_t result_limit = 16 * 1024 * 1024;  // bytes of a result's JSON; larger is error "ResultTooLarge"
  std::chrono::milliseconds kill_grace{250};  // past the timeout, a call that did not stop gets its worker killed
  // Each worker confined: namespaces of its own, no capabilities, a seccomp filter, resource limits
  // (runtime/sandbox.hpp, docs/security.md). Off: a worker holds the server's authority (its files, its network,
  // its processes).
  bool sandbox = true;
  FunctionNetwork network = FunctionNetwork::host;  // sandboxed workers only
  std::size_t tmp_mb = 64;         // a sandboxed worker's private /tmp (and largest file it may write)
  unsigned max_processes = 64;     // processes and threads a sandboxed worker may have at once (RLIMIT_NPROC)
  unsigned max_open_files = 1024;  // RLIMIT_NOFILE, sandboxed or not
  std::filesystem::path program;   // the faas-worker executable; empty = $FAAS_WORKER_PROGRAM, next to this
                                   // program, then where the build or the install put it
};

struct EngineConfig {
  std::filesystem::path data_dir = "faas-data";  // in a cluster: this node's cache of code and virtualenvs
  // Where functions, records and the inbox are kept: "sqlite" (<data_dir>/faas.db) or a PostgreSQL connection URI
  // ("postgresql://user@host:port/db"), which every node of a cluster shares (docs/scaling.md).
  std::string store = "sqlite";
  std::string node_id;                  // this server among those sharing the store; empty: "<host name>:<pid>"
  // In a cluster: how long a node's inbox entries and asynchronous calls stay its own without a heartbeat (one a
  // second); past it, another node takes them up.
  std::chrono::milliseconds node_lease{std::chrono::seconds(5)};
  Isolation isolation = Isolation::inprocess;
  std::filesystem::path python = "/usr/bin/python3";  // builds virtualenvs; becomes sys.executable
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // per invocation (and per import at upload)
  unsigned max_concurrency = 8;         // invocations running at once
  std::size_t max_queue = 4096;         // invocations waiting beyond those; more are refused as overloaded
  std::size_t output_limit = 64 * 1024; // bytes of stdout/stderr kept per invocation
  std::size_t log_retention = 10000;    // records kept per function; older ones are dropped (0 = keep all)
  std::size_t keep_versions = 10;       // versions of each function's code kept for rollback and pinned calls
                                        // (the current one is always kept)
  std::chrono::seconds pip_timeout{std::chrono::minutes(5)};
  std::string pip_index;                // the package index pip uses (--index-url); empty: pip's own default
                                        // and the server's PIP_* settings
  std::chrono::milliseconds registry_poll{250};  // how often uploads by other processes are picked up
  bool schedules = true;                // fire functions' schedules at each minute (Engine::run_schedules)
  WorkerConfig workers;                 // used with Isolation::process
};

}  // namespace faas
