// sandbox.hpp — what a confined faas-worker (or a virtualenv's build) sees and who it is (docs/security.md).
//
// Inside, a worker sees the system's /usr (Python and libraries) and a few files of /etc read-only, its function's
// folder and virtualenv read-only (bound from descriptors the engine opened, so no path outside needs to be
// reachable), a private /tmp of bounded size, its own /proc and a minimal /dev; not the data dir, other functions,
// or any other process. It has its own mount, PID, IPC, UTS and cgroup namespaces (and a network namespace with
// only loopback when its network is `none`), no capabilities, no_new_privs and a syscall filter. A server that
// is not root gives it a user namespace in which it is nobody; a root server gives it a uid of its own on the
// host, so that what the kernel checks outside (RLIMIT_NPROC, file modes) never meets root. The mechanism is
// util/confinement.hpp; faas-worker adds the resource limits.
#pragma once

#include <linux/filter.h>

#include <filesystem>
#include <vector>

#include "faas/config.hpp"
#include "util/confinement.hpp"

namespace faas::runtime {

struct FunctionSpec;

// The confinement for a worker that will load `function` (its folder and site dirs are bound), or null for a
// probe with nothing of a function. `program` is faas-worker. Throws Error(internal) when a path cannot be opened.
Confinement worker_confinement(const WorkerConfig& config, const std::filesystem::path& program,
                               const FunctionSpec* function);

// The confinement for a virtualenv's pip install: like a worker's, but with the network, a larger /tmp,
// `writable` bound read-write and `readable` read-only (at their own paths). A root server's build runs as
// build_uid: give it `writable` first (and take it back after).
Confinement build_confinement(const WorkerConfig& config, const std::filesystem::path& writable,
                              const std::vector<std::filesystem::path>& readable);
constexpr unsigned build_uid = 2'999'999'999u;

// The seccomp filter every confined process runs under (compiled once): it refuses what a function never needs
// and a hostile one would like (other processes' memory, keyrings, modules, BPF, perf, mounts and namespaces,
// the clock, reboot) with EPERM.
const std::vector<sock_filter>& syscall_filter();

}  // namespace faas::runtime
