#include "runtime/sandbox.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <seccomp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "faas/error.hpp"
#include "runtime/function_spec.hpp"

namespace fs = std::filesystem;

namespace faas::runtime {

namespace {

// A worker's identity inside its user namespace when the server is not root (nobody).
constexpr unsigned unprivileged_id = 65534;
// A root server's workers each run as a uid of this range that no account uses: RLIMIT_NPROC counts processes
// per uid, so one worker's fork bomb cannot starve the others (or root, which it never is).
constexpr unsigned first_worker_uid = 3'000'000'000u;
constexpr unsigned worker_uids = 1'000'000;

// Files of /etc a Python function may need: the loader's cache, certificates, name resolution, time zones.
// Nothing else of /etc (no passwd, shadow, or the server's own configuration).
constexpr const char* etc_files[] = {"/etc/ld.so.cache", "/etc/ssl", "/etc/ca-certificates", "/etc/resolv.conf",
                                     "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
                                     "/etc/services", "/etc/protocols", "/etc/localtime", "/etc/mime.types",
                                     "/etc/python3", "/etc/python3.11", "/etc/os-release", "/etc/debian_version"};

// System calls a function never needs and a hostile one would like: other processes' memory, the kernel's
// keyrings, modules, BPF and perf, mounts and namespaces, the clock, swap and reboot.
constexpr const char* refused_syscalls[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "mount", "umount2", "pivot_root",
    "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr", "unshare", "setns",
    "chroot", "swapon", "swapoff", "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
    "open_by_handle_at", "name_to_handle_at", "acct", "quotactl", "syslog", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "iopl", "ioperm", "lookup_dcookie", "fanotify_init", "vhangup", "personality",
    "uselib", "nfsservctl", "_sysctl"};

std::vector<sock_filter> compile_filter() {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> filter(::seccomp_init(SCMP_ACT_ALLOW), ::seccomp_release);
  if (!filter) throw Error(ErrorCode::internal, "seccomp_init failed");
  ::seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);  // a binary tree: each allowed call pays a few tests
  for (const char* name : refused_syscalls) {
    int number = ::seccomp_syscall_resolve_name(name);
    if (number == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (::seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(EPERM), number, 0) != 0) {
      throw Error(ErrorCode::internal, std::string("seccomp: cannot refuse ") + name);
    }
  }
  // No new namespaces through clone either (a user namespace would give back the capabilities dropped).
  for (unsigned long flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWUTS,
                             CLONE_NEWCGROUP}) {
    if (::seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)) != 0) {
      throw Error(ErrorCode::internal, "seccomp: cannot filter clone");
    }
  }
  // clone3 cannot be filtered by its flags (they are behind a pointer): ENOSYS makes libc fall back to clone.
  ::seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(ENOSYS), ::seccomp_syscall_resolve_name("clone3"), 0);
  // libseccomp 2.5 exports the program to a descriptor only.
  OwnedFd memory(::memfd_create("faas-seccomp", MFD_CLOEXEC));
  if (memory.get() < 0 || ::seccomp_export_bpf(filter.get(), memory.get()) != 0) {
    throw Error(ErrorCode::internal, "seccomp: cannot export the filter");
  }
  auto size = ::lseek(memory.get(), 0, SEEK_END);
  std::vector<sock_filter> program(static_cast<std::size_t>(size) / sizeof(sock_filter));
  if (size <= 0 || ::pread(memory.get(), program.data(), static_cast<std::size_t>(size), 0) != size) {
    throw Error(ErrorCode::internal, "seccomp: cannot read the filter back");
  }
  return program;
}

// The view every confined process shares: the system read-only, /tmp, /proc, /dev.
Confinement common_view(bool network, std::size_t tmp_mb) {
  Confinement confinement;
  confinement.network = network;
  confinement.syscall_filter = &syscall_filter();
  confinement.system_path("/usr");
  // Top-level folders of the root: the symlinks they are on merged-/usr systems, else read-only binds.
  for (const char* entry : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    if (fs::is_symlink(entry, ec)) {
      confinement.symlink(fs::read_symlink(entry, ec).string(), entry);
    } else {
      confinement.system_path(entry);
    }
  }
  confinement.directory("/etc", 0755);
  for (const char* file : etc_files) confinement.system_path(file);
  confinement.tmpfs("/tmp", tmp_mb * 1024 * 1024);
  confinement.proc("/proc");
  confinement.dev("/dev", "/tmp");  // shared memory (multiprocessing's locks) lives in /tmp's bounded space
  return confinement;
}

}  // namespace

const std::vector<sock_filter>& syscall_filter() {
  static const std::vector<sock_filter> program = compile_filter();
  return program;
}

Confinement worker_confinement(const WorkerConfig& config, const fs::path& program, const FunctionSpec* function) {
  auto network = function != nullptr ? function->network : config.network;
  auto confinement = common_view(network == FunctionNetwork::host, config.tmp_mb);
  if (!program.string().starts_with("/usr/")) confinement.bind(program, program);  // else in view already
  confinement.workdir = "/tmp";
  if (function != nullptr) {
    // At its final place, also while an upload is staged: there, only this version is in view.
    auto folder = function->source.parent_path();
    confinement.bind(function->staged_source.empty() ? folder : function->staged_source.parent_path(), folder);
    for (const auto& dir : function->site_dirs) confinement.bind(dir, dir);
    confinement.workdir = folder;
  }
  static std::atomic<unsigned> next_uid{0};
  confinement.uid = ::geteuid() == 0 ? first_worker_uid + next_uid++ % worker_uids : unprivileged_id;
  return confinement;
}

Confinement build_confinement(const WorkerConfig& config, const fs::path& writable,
                              const std::vector<fs::path>& readable) {
  // pip needs the package index (the network), and room in /tmp to unpack and build.
  auto confinement = common_view(true, std::max<std::size_t>(config.tmp_mb, 2048));
  for (const auto& path : readable) confinement.bind(path, path);
  confinement.bind(writable, writable, true);
  confinement.workdir = "/tmp";
  confinement.uid = ::geteuid() == 0 ? build_uid : unprivileged_id;
  return confinement;
}

}  // namespace faas::runtime
