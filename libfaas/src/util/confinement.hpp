// confinement.hpp — starting a program in namespaces of its own, seeing only what it is given.
//
// The child is cloned straight from the server (no helper program): new mount, PID, IPC, UTS and cgroup
// namespaces, a user namespace too when the server is not root, a network namespace with only loopback when it
// has no network. Between clone and exec it builds a root of its own on a tmpfs (read-only binds, a bounded
// /tmp, its own /proc, a minimal /dev), pivots into it, drops to an identity with no capabilities, sets
// no_new_privs and the syscall filter, and execs. It is PID 1 of its namespace: when it ends, everything it
// started ends with it. Costs about 2 ms beyond a plain spawn (docs/performance.md).
//
// The policy (which paths, which identity) is runtime/sandbox.hpp's; this is the mechanism.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "util/subprocess.hpp"

namespace faas {

class Confinement {
 public:
  // A root server runs the program as `uid` (and a group of the same number) on the host: without a user
  // namespace, so that what the kernel counts per user (RLIMIT_NPROC) is the program's own. A server that is
  // not root maps its own user to `uid` in a new user namespace.
  unsigned uid = 65534;
  bool network = true;                 // false: a network namespace of its own with loopback only
  std::string hostname = "faas";
  std::filesystem::path workdir = "/";
  const std::vector<sock_filter>* syscall_filter = nullptr;  // loaded last, just before exec

  // `path` of the host, read-only at the same place (a symlink followed); skipped when it does not exist.
  void system_path(const std::filesystem::path& path);
  // A folder of the new root with `mode` (those made on the way to a mount point can be passed, not listed).
  void directory(const std::filesystem::path& inside, unsigned mode);
  void symlink(const std::string& target, const std::filesystem::path& link);
  // `outside` opened now (so only the server needs to reach it), bound at `inside`. Throws Error(internal).
  void bind(const std::filesystem::path& outside, const std::filesystem::path& inside, bool writable = false);
  void tmpfs(const std::filesystem::path& inside, std::size_t bytes);  // writable by anyone (sticky, like /tmp)
  void proc(const std::filesystem::path& inside);
  // A read-only tmpfs with the harmless devices (null, zero, full, random, urandom), the std* and fd links, and
  // `shm` bound to `shm` (a tmpfs made before: its size bounds both).
  void dev(const std::filesystem::path& inside, const std::filesystem::path& shm);

  struct Entry {
    enum class Kind { system, directory, symlink, bind, tmpfs, proc, dev } kind;
    std::string source;  // system: the host path; symlink: its target; dev: the shm path
    std::filesystem::path target;
    bool writable = false;
    bool directory = true;
    int fd = -1;          // bind: the descriptor in fds_
    std::size_t bytes = 0;  // tmpfs: its size; directory: its mode
  };
  const std::vector<Entry>& entries() const noexcept { return entries_; }

 private:
  std::vector<Entry> entries_;
  std::vector<OwnedFd> fds_;
};

// What a child's descriptor `child` becomes: a copy of `ours`, or /dev/null when `ours` is -1. Applied in
// order; no `ours` may be the `child` of an earlier entry.
struct ChildDescriptor {
  int child;
  int ours;
};

// Starts argv[0] (a path) confined, with exactly `env`, every signal at its default and none blocked, in a new
// session. Returns its pid (on the host). Throws Error(internal) saying which step the kernel refused.
pid_t spawn_confined(const Confinement& confinement, const std::vector<std::string>& argv,
                     const std::vector<std::string>& env, const std::vector<ChildDescriptor>& descriptors);

}  // namespace faas
