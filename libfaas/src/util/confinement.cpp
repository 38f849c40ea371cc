#include "util/confinement.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <set>

#include "faas/error.hpp"

namespace fs = std::filesystem;

namespace faas {

namespace {

// mount_setattr(2) (Linux 5.12), declared here: <linux/mount.h> and <sys/mount.h> clash in glibc 2.36.
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
struct MountAttributes {
  std::uint64_t set = 0;
  std::uint64_t clear = 0;
  std::uint64_t propagation = 0;
  std::uint64_t userns_fd = 0;
};
constexpr std::uint64_t attr_rdonly = 0x1, attr_nosuid = 0x2, attr_nodev = 0x4;
constexpr unsigned at_recursive = 0x8000;

// One step of building the child's root, every string prepared by the parent (the child may not allocate).
struct Op {
  enum Kind : unsigned char { mkdir, mkfile, symlink, bind, tmpfs, proc, seal } kind;
  const char* path;            // relative to the new root (the child's working directory while it builds)
  const char* source = nullptr;  // bind: what is bound; symlink: the target; tmpfs: the mount options
  std::uint64_t attributes = 0;  // bind: set on the new mount (and those below it); mkdir: the mode
  bool optional = false;         // bind: a missing source skips the step
  int same_as = -1;              // bind: a descriptor of what must be bound (checked once it is)
};

// Where the host's root is while the child builds its own: a bind names its source there.
constexpr const char* old_root = "/oldroot";

// Steps that are not Ops, for the message when the kernel refuses one.
enum Step : int {
  step_none = -100, step_userns, step_private, step_root, step_hostname, step_loopback, step_descriptors,
  step_pivot, step_seal_root, step_workdir, step_session, step_identity, step_filter, step_exec
};

const char* step_name(int step) {
  switch (step) {
    case step_userns: return "map its user in a new user namespace";
    case step_private: return "make its mounts private";
    case step_root: return "mount its root";
    case step_hostname: return "set its hostname";
    case step_loopback: return "bring its loopback up";
    case step_descriptors: return "set its descriptors";
    case step_pivot: return "pivot into its root";
    case step_seal_root: return "make its root read-only";
    case step_workdir: return "enter its working directory";
    case step_session: return "start a session";
    case step_identity: return "drop its identity and capabilities";
    case step_filter: return "load its syscall filter";
    case step_exec: return "execute the program";
    default: return "start";
  }
}

// Everything the child reads (prepared) and the one thing it writes (why it failed), shared through CLONE_VM.
struct ChildPlan {
  const Op* ops = nullptr;
  std::size_t op_count = 0;
  bool user_namespace = false;
  const char* uid_map = nullptr;
  const char* gid_map = nullptr;
  unsigned uid = 0;
  bool loopback = false;
  const char* hostname = nullptr;
  std::size_t hostname_length = 0;
  const char* workdir = nullptr;
  const ChildDescriptor* descriptors = nullptr;
  std::size_t descriptor_count = 0;
  const char* dev_null = "/oldroot/dev/null";  // the host's, while building
  const sock_fprog* filter = nullptr;
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  volatile int failed_step = step_none;
  volatile int failed_errno = 0;
};

// The child runs on its own small stack in the parent's memory (until it execs), with a copy of the parent
// thread's TLS: nothing here may allocate, lock, or reach a sanitizer's bookkeeping. Raw system calls only.
#define FAAS_CHILD_CODE __attribute__((noinline, no_sanitize("address", "undefined")))

FAAS_CHILD_CODE int fail(ChildPlan* plan, int step) {
  plan->failed_errno = errno;
  plan->failed_step = step;
  return 127;
}

FAAS_CHILD_CODE std::size_t length(const char* text) {
  std::size_t n = 0;
  while (text[n] != '\0') ++n;
  return n;
}

FAAS_CHILD_CODE bool write_file(const char* path, const char* text) {
  long fd = ::syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  auto n = static_cast<std::size_t>(length(text));
  bool ok = ::syscall(SYS_write, fd, text, n) == static_cast<long>(n);
  ::syscall(SYS_close, fd);
  return ok;
}

FAAS_CHILD_CODE bool set_attributes(const char* path, std::uint64_t attributes, unsigned flags) {
  MountAttributes attr;
  attr.set = attributes;
  return ::syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &attr, sizeof attr) == 0;
}

FAAS_CHILD_CODE bool run_op(const Op& op) {
  switch (op.kind) {
    case Op::mkdir:
      return ::syscall(SYS_mkdirat, AT_FDCWD, op.path, op.attributes) == 0 || errno == EEXIST;
    case Op::mkfile: {
      long fd = ::syscall(SYS_openat, AT_FDCWD, op.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      ::syscall(SYS_close, fd);
      return true;
    }
    case Op::symlink:
      return ::syscall(SYS_symlinkat, op.source, AT_FDCWD, op.path) == 0;
    case Op::bind: {
      if (::syscall(SYS_mount, op.source, op.path, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return op.optional && errno == ENOENT;
      }
      if (op.same_as >= 0) {
        // A mount takes a path, not a descriptor (not across namespaces): the path must still name the same
        // thing the server opened.
        struct stat opened {}, bound {};
        if (::syscall(SYS_newfstatat, op.same_as, "", &opened, AT_EMPTY_PATH) != 0 ||
            ::syscall(SYS_newfstatat, AT_FDCWD, op.path, &bound, 0) != 0) {
          return false;
        }
        if (opened.st_dev != bound.st_dev || opened.st_ino != bound.st_ino) {
          errno = ESTALE;
          return false;
        }
      }
      return set_attributes(op.path, op.attributes, at_recursive);
    }
    case Op::tmpfs:
      return ::syscall(SYS_mount, "tmpfs", op.path, "tmpfs", MS_NOSUID | MS_NODEV, op.source) == 0;
    case Op::proc:
      return ::syscall(SYS_mount, "proc", op.path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0;
    case Op::seal:
      return set_attributes(op.path, attr_rdonly, 0);
  }
  return false;
}

FAAS_CHILD_CODE bool bring_loopback_up() {
  long fd = ::syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq request{};
  request.ifr_name[0] = 'l';
  request.ifr_name[1] = 'o';
  bool ok = ::syscall(SYS_ioctl, fd, SIOCGIFFLAGS, &request) == 0;
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
  ok = ok && ::syscall(SYS_ioctl, fd, SIOCSIFFLAGS, &request) == 0;
  ::syscall(SYS_close, fd);
  return ok;
}

FAAS_CHILD_CODE bool set_descriptors(const ChildPlan& plan) {
  for (std::size_t i = 0; i < plan.descriptor_count; ++i) {
    const auto& d = plan.descriptors[i];
    long from = d.ours;
    if (from < 0) from = ::syscall(SYS_openat, AT_FDCWD, plan.dev_null, O_RDWR | O_CLOEXEC);
    if (from < 0) return false;
    if (from == d.child) {
      if (::syscall(SYS_fcntl, from, F_SETFD, 0) != 0) return false;
    } else {
      if (::syscall(SYS_dup3, from, d.child, 0) < 0) return false;
      if (d.ours < 0) ::syscall(SYS_close, from);
    }
  }
  return true;
}

// No capability left in any set, none to be had again: bounding set emptied, then the identity changed (which
// clears the permitted and effective sets), then whatever remains cleared explicitly.
FAAS_CHILD_CODE bool drop_identity(const ChildPlan& plan) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (::syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return false;
  }
  if (::syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return false;
  if (!plan.user_namespace) {
    // Raw calls: glibc's would try to change every thread of the parent, whose memory this child shares.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) return false;
    if (::syscall(SYS_setresgid, plan.uid, plan.uid, plan.uid) != 0) return false;
    if (::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) return false;
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  return ::syscall(SYS_capset, &header, data) == 0;
}

FAAS_CHILD_CODE int child_main(void* argument) {
  auto* plan = static_cast<ChildPlan*>(argument);
  // The parent's handlers live in the memory this child shares: none may run here.
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    std::uint64_t mask;
  } default_action{};  // SIG_DFL
  for (int sig = 1; sig < 65; ++sig) ::syscall(SYS_rt_sigaction, sig, &default_action, nullptr, 8);

  if (plan->user_namespace &&
      (!write_file("/proc/self/setgroups", "deny") || !write_file("/proc/self/uid_map", plan->uid_map) ||
       !write_file("/proc/self/gid_map", plan->gid_map))) {
    return fail(plan, step_userns);
  }
  if (::syscall(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return fail(plan, step_private);
  // A scratch tmpfs over /tmp (in this mount namespace only) becomes the root, the host's under /oldroot, and the
  // new root is built on a second tmpfs at /newroot.
  if (::syscall(SYS_mount, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=16") != 0 ||
      ::syscall(SYS_chdir, "/tmp") != 0 || ::syscall(SYS_mkdirat, AT_FDCWD, "oldroot", 0755) != 0 ||
      ::syscall(SYS_mkdirat, AT_FDCWD, "newroot", 0755) != 0 ||
      ::syscall(SYS_mount, "tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096") !=
          0 ||
      ::syscall(SYS_pivot_root, ".", "oldroot") != 0 || ::syscall(SYS_chdir, "/newroot") != 0) {
    return fail(plan, step_root);
  }
  for (std::size_t i = 0; i < plan->op_count; ++i) {
    if (!run_op(plan->ops[i])) return fail(plan, static_cast<int>(i));
  }
  if (::syscall(SYS_sethostname, plan->hostname, plan->hostname_length) != 0) return fail(plan, step_hostname);
  if (plan->loopback && !bring_loopback_up()) return fail(plan, step_loopback);
  if (!set_descriptors(*plan)) return fail(plan, step_descriptors);
  // pivot_root(".", "."): the scratch root (and the host's below it) ends up stacked on the new one, and is
  // detached at once.
  if (::syscall(SYS_pivot_root, ".", ".") != 0 || ::syscall(SYS_umount2, ".", MNT_DETACH) != 0 ||
      ::syscall(SYS_chdir, "/") != 0) {
    return fail(plan, step_pivot);
  }
  if (!set_attributes("/", attr_rdonly, 0)) return fail(plan, step_seal_root);
  if (::syscall(SYS_chdir, plan->workdir) != 0) return fail(plan, step_workdir);
  if (::syscall(SYS_setsid) < 0) return fail(plan, step_session);
  if (!drop_identity(*plan)) return fail(plan, step_identity);
  // After the identity changed (which clears it): this process dies with the thread that started it.
  if (::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return fail(plan, step_identity);
  if (::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(plan, step_filter);
  if (plan->filter != nullptr &&
      ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, plan->filter) != 0) {
    return fail(plan, step_filter);
  }
  std::uint64_t none = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, 8);
  ::syscall(SYS_execve, plan->program, plan->argv, plan->envp);
  return fail(plan, step_exec);
}

// The mount points a root built from `entries` needs, in order, as Ops over strings kept in `strings`.
class Compiler {
 public:
  explicit Compiler(std::deque<std::string>& strings) : strings_(strings) {}

  void add(const Confinement::Entry& entry) {
    using Kind = Confinement::Entry::Kind;
    switch (entry.kind) {
      case Kind::system: {
        struct stat info {};
        std::error_code ec;
        auto real = fs::canonical(entry.source, ec);  // a symlink's target: it would resolve inside the new root
        if (ec || ::stat(real.c_str(), &info) != 0) return;  // not on this machine
        mount_point(entry.target, S_ISDIR(info.st_mode));
        ops_.push_back({Op::bind, place(entry.target), text(old_root + real.string()),
                        attr_rdonly | attr_nosuid | attr_nodev, true});
        return;
      }
      case Kind::directory:
        parents(entry.target);
        if (made_.insert(entry.target).second) ops_.push_back({Op::mkdir, place(entry.target), nullptr, entry.bytes});
        return;
      case Kind::symlink:
        parents(entry.target);
        ops_.push_back({Op::symlink, place(entry.target), text(entry.source)});
        return;
      case Kind::bind:
        mount_point(entry.target, entry.directory);
        ops_.push_back({Op::bind, place(entry.target), text(old_root + opened_path(entry.fd)),
                        (entry.writable ? 0 : attr_rdonly) | attr_nosuid | attr_nodev, false, entry.fd});
        return;
      case Kind::tmpfs:
        mount_point(entry.target, true);
        ops_.push_back({Op::tmpfs, place(entry.target),
                        text("mode=1777,size=" + std::to_string(entry.bytes) +
                             ",nr_inodes=" + std::to_string(std::max<std::size_t>(entry.bytes / 4096, 1024)))});
        return;
      case Kind::proc:
        mount_point(entry.target, true);
        ops_.push_back({Op::proc, place(entry.target)});
        return;
      case Kind::dev:
        add_dev(entry);
        return;
    }
  }

  const std::vector<Op>& ops() const { return ops_; }

 private:
  void add_dev(const Confinement::Entry& entry) {
    mount_point(entry.target, true);
    ops_.push_back({Op::tmpfs, place(entry.target), text("mode=0755,size=64k,nr_inodes=64")});
    for (const char* device : {"null", "zero", "full", "random", "urandom"}) {
      auto target = entry.target / device;
      mount_point(target, false);
      // Writable, and without nodev: these are the devices.
      ops_.push_back({Op::bind, place(target), text(std::string(old_root) + "/dev/" + device), attr_nosuid});
    }
    const std::pair<const char*, const char*> links[] = {
        {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}};
    for (auto [target, name] : links) ops_.push_back({Op::symlink, place(entry.target / name), text(target)});
    auto shm = entry.target / "shm";
    mount_point(shm, true);
    ops_.push_back({Op::bind, place(shm), text(fs::path(entry.source).relative_path().string()), attr_nosuid | attr_nodev});
    ops_.push_back({Op::seal, place(entry.target)});
  }

  // The path the server's descriptor `fd` names now.
  static std::string opened_path(int fd) {
    std::error_code ec;
    auto path = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
    if (ec) throw Error(ErrorCode::internal, "cannot resolve a descriptor to bind: " + ec.message());
    return path.string();
  }

  // The folders above `target` (and `target` itself: a folder, or an empty file to bind a file over). Folders
  // made on the way can be passed through, not listed.
  void mount_point(const fs::path& target, bool directory) {
    parents(target);
    if (directory) {
      if (made_.insert(target).second) ops_.push_back({Op::mkdir, place(target), nullptr, 0711});
    } else {
      ops_.push_back({Op::mkfile, place(target)});
    }
  }

  void parents(const fs::path& target) {
    std::vector<fs::path> missing;
    for (auto dir = target.parent_path(); dir.has_relative_path() && !made_.contains(dir); dir = dir.parent_path()) {
      missing.push_back(dir);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      made_.insert(*it);
      ops_.push_back({Op::mkdir, place(*it), nullptr, 0711});
    }
  }

  // Paths relative to the new root, which is the child's working directory while it builds.
  const char* place(const fs::path& inside) { return text(inside.relative_path().string()); }
  const char* text(std::string value) { return strings_.emplace_back(std::move(value)).c_str(); }

  std::deque<std::string>& strings_;
  std::vector<Op> ops_;
  std::set<fs::path> made_;
};

}  // namespace

void Confinement::system_path(const fs::path& path) {
  entries_.push_back({Entry::Kind::system, path.string(), path});
}

void Confinement::directory(const fs::path& inside, unsigned mode) {
  Entry entry{Entry::Kind::directory, {}, inside};
  entry.bytes = mode;
  entries_.push_back(std::move(entry));
}

void Confinement::symlink(const std::string& target, const fs::path& link) {
  entries_.push_back({Entry::Kind::symlink, target, link});
}

void Confinement::bind(const fs::path& outside, const fs::path& inside, bool writable) {
  int fd = ::open(outside.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::internal, "cannot open " + outside.string() + ": " + std::strerror(errno));
  fds_.emplace_back(fd);
  struct stat info {};
  bool directory = ::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode);
  entries_.push_back({Entry::Kind::bind, {}, inside, writable, directory, fd});
}

void Confinement::tmpfs(const fs::path& inside, std::size_t bytes) {
  Entry entry{Entry::Kind::tmpfs, {}, inside};
  entry.bytes = bytes;
  entries_.push_back(std::move(entry));
}

void Confinement::proc(const fs::path& inside) { entries_.push_back({Entry::Kind::proc, {}, inside}); }

void Confinement::dev(const fs::path& inside, const fs::path& shm) {
  entries_.push_back({Entry::Kind::dev, shm.string(), inside});
}

pid_t spawn_confined(const Confinement& confinement, const std::vector<std::string>& argv,
                     const std::vector<std::string>& env, const std::vector<ChildDescriptor>& descriptors) {
  std::deque<std::string> strings;
  Compiler compiler(strings);
  for (const auto& entry : confinement.entries()) compiler.add(entry);

  ChildPlan plan;
  plan.ops = compiler.ops().data();
  plan.op_count = compiler.ops().size();
  plan.user_namespace = ::geteuid() != 0;
  std::string uid_map = std::to_string(confinement.uid) + " " + std::to_string(::geteuid()) + " 1";
  std::string gid_map = std::to_string(confinement.uid) + " " + std::to_string(::getegid()) + " 1";
  plan.uid_map = uid_map.c_str();
  plan.gid_map = gid_map.c_str();
  plan.uid = confinement.uid;
  plan.loopback = !confinement.network;
  plan.hostname = confinement.hostname.c_str();
  plan.hostname_length = confinement.hostname.size();
  std::string workdir = confinement.workdir.string();
  plan.workdir = workdir.c_str();
  plan.descriptors = descriptors.data();
  plan.descriptor_count = descriptors.size();
  sock_fprog filter{};
  if (confinement.syscall_filter != nullptr) {
    filter.len = static_cast<unsigned short>(confinement.syscall_filter->size());
    filter.filter = const_cast<sock_filter*>(confinement.syscall_filter->data());
    plan.filter = &filter;
  }
  auto args = argv;
  auto environment = env;
  auto arg_pointers = c_string_array(args);
  auto env_pointers = c_string_array(environment);
  plan.program = args.at(0).c_str();
  plan.argv = arg_pointers.data();
  plan.envp = env_pointers.data();

  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_VM | CLONE_VFORK |
              SIGCHLD;
  if (plan.user_namespace) flags |= CLONE_NEWUSER;
  if (!confinement.network) flags |= CLONE_NEWNET;
  // The child shares this memory until it execs (CLONE_VM, and this thread waits: CLONE_VFORK), so it needs no
  // copy of the server's address space. Its stack is its own.
  constexpr std::size_t stack_size = 64 * 1024;
  auto stack = std::make_unique<std::max_align_t[]>(stack_size / sizeof(std::max_align_t));
  sigset_t all, previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = ::clone(child_main, reinterpret_cast<char*>(stack.get()) + stack_size, flags, &plan);
  int clone_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    std::string why = std::strerror(clone_error);
    if (plan.user_namespace && (clone_error == EPERM || clone_error == ENOSPC || clone_error == EINVAL)) {
      why += ": this kernel refuses unprivileged user namespaces (kernel.unprivileged_userns_clone, "
             "user.max_user_namespaces); run the server as root, allow them, or start it with --no-sandbox";
    }
    throw Error(ErrorCode::internal, "cannot start a sandboxed process: " + why);
  }
  if (plan.failed_step != step_none) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::string step = plan.failed_step >= 0 && static_cast<std::size_t>(plan.failed_step) < plan.op_count
                           ? std::string("prepare /") + plan.ops[plan.failed_step].path
                           : step_name(plan.failed_step);
    throw Error(ErrorCode::internal, "the sandbox could not " + step + ": " + std::strerror(plan.failed_errno));
  }
  return pid;
}

}  // namespace faas
