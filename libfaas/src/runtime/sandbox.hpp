// sandbox.hpp — the command that starts a faas-worker confined by bubblewrap (docs/security.md).
//
// Inside, a worker sees the system's /usr (Python and libraries) and a few files of /etc read-only, its function's
// folder and virtualenv read-only (bound from descriptors the engine opened, so no path outside needs to be
// reachable), a private /tmp of bounded size, its own /proc and a minimal /dev; not the data dir, other functions,
// or any other process. It has new user, PID, IPC, UTS and cgroup namespaces (and a network namespace with only
// loopback when its network is `none`) and no capabilities. A server that is not root runs bwrap unprivileged,
// with a user namespace in which the worker is nobody and may create no other. A root server runs bwrap
// privileged without a user namespace, and the worker drops to a uid of its own through setpriv, so that what the
// kernel checks outside (RLIMIT_NPROC, file modes) never meets root. faas-worker adds the seccomp filter (which
// also refuses new user namespaces) and the resource limits.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "faas/config.hpp"
#include "util/subprocess.hpp"

namespace faas::runtime {

struct FunctionSpec;

struct SandboxedCommand {
  std::vector<std::string> argv;
  std::vector<OwnedFd> fds;           // opened O_PATH; each goes to the child as the descriptor in `targets`
  std::vector<int> targets;
};

// The argv (and the descriptors to hand over) that runs `worker_argv` confined. `function` is the one the worker
// will load (its folder and site dirs are bound), or null for a probe with nothing of a function. Throws
// Error(internal) when a path cannot be opened.
SandboxedCommand sandboxed_command(const WorkerConfig& config, const std::vector<std::string>& worker_argv,
                                   const FunctionSpec* function);

// The argv that runs `argv` (a virtualenv's pip install) confined like a worker, but with the network, a larger
// /tmp, `writable` bound read-write and `readable` read-only (at their own paths). A root server's build runs as
// build_uid: give it `writable` first (and take it back after).
SandboxedCommand sandboxed_build(const WorkerConfig& config, const std::vector<std::string>& argv,
                                 const std::filesystem::path& writable,
                                 const std::vector<std::filesystem::path>& readable);
constexpr unsigned build_uid = 2'999'999'999u;


}  // namespace faas::runtime
