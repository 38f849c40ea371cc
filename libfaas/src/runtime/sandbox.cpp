#include "runtime/sandbox.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <system_error>

#include "faas/error.hpp"
#include "runtime/function_spec.hpp"

namespace fs = std::filesystem;

namespace faas::runtime {

namespace {

// A worker's identity inside its user namespace when the server is not root (nobody).
constexpr const char* unprivileged_id = "65534";
// A root server's workers each run as a uid of this range that no account uses: RLIMIT_NPROC counts processes
// per uid, so one worker's fork bomb cannot starve the others (or root, which it never is).
constexpr unsigned first_worker_uid = 3'000'000'000u;
constexpr unsigned worker_uids = 1'000'000;

// Files of /etc a Python function may need: the loader's cache, certificates, name resolution, time zones.
// Nothing else of /etc (no passwd, shadow, or the server's own configuration).
constexpr const char* etc_files[] = {"/etc/ld.so.cache", "/etc/ssl", "/etc/ca-certificates", "/etc/resolv.conf",
                                     "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
                                     "/etc/services", "/etc/protocols", "/etc/localtime", "/etc/mime.types",
                                     "/etc/python3", "/etc/python3.11"};

fs::path find_program(const char* name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
    fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// Binds a top-level directory of the root: as the symlink it is on merged-/usr systems, else read-only.
void add_root_entry(std::vector<std::string>& argv, const char* path) {
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    argv.insert(argv.end(), {"--symlink", fs::read_symlink(path, ec).string(), path});
  } else if (fs::exists(path, ec)) {
    argv.insert(argv.end(), {"--ro-bind", path, path});
  }
}

}  // namespace

fs::path find_bwrap() { return find_program("bwrap"); }

SandboxedCommand sandboxed_command(const WorkerConfig& config, const std::vector<std::string>& worker_argv,
                                   const FunctionSpec* function) {
  SandboxedCommand command;
  auto bwrap = find_bwrap();
  if (bwrap.empty()) {
    throw Error(ErrorCode::internal, "the sandbox needs bubblewrap (apt-get install bubblewrap), or start the server "
                                     "with --no-sandbox");
  }
  auto& argv = command.argv;
  const bool root = ::geteuid() == 0;
  fs::path setpriv;
  if (root) {
    // bwrap runs privileged (it can reach the data dir to bind what it needs) without a user namespace, and the
    // worker drops to a uid of its own: unprivileged, and alone in what RLIMIT_NPROC counts for it.
    setpriv = find_program("setpriv");
    if (setpriv.empty()) throw Error(ErrorCode::internal, "the sandbox needs setpriv (util-linux) when run as root");
    argv = {bwrap.string(), "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"};
    if (config.network == FunctionNetwork::none) argv.emplace_back("--unshare-net");
    // setpriv needs CAP_SETUID to drop to the worker's uid; losing root loses every capability with it.
  } else {
    // Unprivileged: a user namespace, in which the worker is nobody and may not create another.
    argv = {bwrap.string(), "--unshare-all", "--unshare-user", "--disable-userns", "--uid", unprivileged_id, "--gid",
            unprivileged_id};
    if (config.network == FunctionNetwork::host) argv.emplace_back("--share-net");
    argv.insert(argv.end(), {"--cap-drop", "ALL"});
  }
  argv.insert(argv.end(), {"--die-with-parent", "--new-session", "--hostname", "faas"});
  argv.insert(argv.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* entry : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) add_root_entry(argv, entry);
  for (const char* file : etc_files) argv.insert(argv.end(), {"--ro-bind-try", file, file});
  argv.insert(argv.end(), {"--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size",
                           std::to_string(config.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"});

  // What only the server can reach (its data dir is 0700): bound from descriptors it opens here. Their numbers in
  // the child lie above every descriptor handed over, so no copy overwrites another.
  std::vector<std::size_t> target_args;  // where in argv each target's number goes
  std::set<fs::path> made{"/", "/tmp", "/usr", "/proc", "/dev"};
  auto bind_from_fd = [&](const fs::path& path, const fs::path& inside) {
    // bwrap would give the folders it creates above a mount point the modes they have outside (a 0700 data dir
    // would lock the worker out): make them first, searchable.
    std::vector<fs::path> above;
    for (auto dir = inside.parent_path(); made.insert(dir).second; dir = dir.parent_path()) above.push_back(dir);
    for (auto it = above.rbegin(); it != above.rend(); ++it) argv.insert(argv.end(), {"--perms", "0711", "--dir", it->string()});
    int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) throw Error(ErrorCode::internal, "cannot open " + path.string() + ": " + std::strerror(errno));
    command.fds.emplace_back(fd);
    target_args.push_back(argv.size() + 1);
    argv.insert(argv.end(), {"--ro-bind-fd", "", inside.string()});
  };
  bind_from_fd(worker_argv.front(), worker_argv.front());
  std::string workdir = "/tmp";
  if (function != nullptr) {
    // At its final place, also while an upload is staged: there, only this version is in view.
    auto folder = function->source.parent_path();
    bind_from_fd(function->staged_source.empty() ? folder : function->staged_source.parent_path(), folder);
    for (const auto& dir : function->site_dirs) bind_from_fd(dir, dir);
    workdir = folder.string();
  }
  int highest = 3;
  for (const auto& fd : command.fds) highest = std::max(highest, fd.get());
  for (std::size_t i = 0; i < command.fds.size(); ++i) {
    command.targets.push_back(highest + 1 + static_cast<int>(i));
    argv[target_args[i]] = std::to_string(command.targets.back());
  }
  argv.insert(argv.end(), {"--chdir", workdir, "--"});
  if (root) {
    static std::atomic<unsigned> next_uid{0};
    auto uid = std::to_string(first_worker_uid + next_uid++ % worker_uids);
    argv.insert(argv.end(), {setpriv.string(), "--reuid", uid, "--regid", uid, "--clear-groups", "--no-new-privs",
                             "--inh-caps=-all", "--bounding-set=-all", "--"});
  }
  argv.insert(argv.end(), worker_argv.begin(), worker_argv.end());
  return command;
}

}  // namespace faas::runtime
