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
                                     "/etc/python3", "/etc/python3.11", "/etc/os-release", "/etc/debian_version"};

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

namespace {

// Assembles a bwrap command: the common view (above), then binds, then the program.
class CommandBuilder {
 public:
  CommandBuilder(bool network, std::size_t tmp_mb) {
    auto bwrap = find_program("bwrap");
    if (bwrap.empty()) {
      throw Error(ErrorCode::internal, "the sandbox needs bubblewrap (apt-get install bubblewrap), or start the "
                                       "server with --no-sandbox");
    }
    auto& argv = command_.argv;
    if (root_) {
      // bwrap runs privileged (it can reach the data dir to bind what it needs) without a user namespace, and
      // the program drops to a uid of its own: unprivileged, and alone in what RLIMIT_NPROC counts for it.
      // (setpriv needs CAP_SETUID for that; losing root loses every capability with it.)
      setpriv_ = find_program("setpriv");
      if (setpriv_.empty()) throw Error(ErrorCode::internal, "the sandbox needs setpriv (util-linux) when run as root");
      argv = {bwrap.string(), "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"};
      if (!network) argv.emplace_back("--unshare-net");
    } else {
      // Unprivileged: a user namespace, in which the program is nobody and may not create another.
      argv = {bwrap.string(), "--unshare-all", "--unshare-user", "--disable-userns", "--uid", unprivileged_id,
              "--gid", unprivileged_id};
      if (network) argv.emplace_back("--share-net");
      argv.insert(argv.end(), {"--cap-drop", "ALL"});
    }
    argv.insert(argv.end(), {"--die-with-parent", "--new-session", "--hostname", "faas"});
    argv.insert(argv.end(), {"--ro-bind", "/usr", "/usr"});
    for (const char* entry : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) add_root_entry(argv, entry);
    // A privileged bwrap would make /etc for them readable by root only.
    argv.insert(argv.end(), {"--perms", "0755", "--dir", "/etc"});
    for (const char* file : etc_files) argv.insert(argv.end(), {"--ro-bind-try", file, file});
    argv.insert(argv.end(), {"--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size",
                             std::to_string(tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"});
  }

  // What only the server can reach (its data dir is 0700) is bound from descriptors it opens here.
  void bind(const fs::path& outside, const fs::path& inside, bool writable = false) {
    auto& argv = command_.argv;
    // bwrap would give the folders it creates above a mount point the modes they have outside (a 0700 data dir
    // would lock the program out): make them first, searchable.
    std::vector<fs::path> above;
    for (auto dir = inside.parent_path(); made_.insert(dir).second; dir = dir.parent_path()) above.push_back(dir);
    for (auto it = above.rbegin(); it != above.rend(); ++it) {
      argv.insert(argv.end(), {"--perms", "0711", "--dir", it->string()});
    }
    int fd = ::open(outside.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) throw Error(ErrorCode::internal, "cannot open " + outside.string() + ": " + std::strerror(errno));
    command_.fds.emplace_back(fd);
    target_args_.push_back(argv.size() + 1);
    argv.insert(argv.end(), {writable ? "--bind-fd" : "--ro-bind-fd", "", inside.string()});
  }

  // `uid`: the identity a root server's program drops to.
  SandboxedCommand finish(const std::string& workdir, unsigned uid, const std::vector<std::string>& program) {
    auto& argv = command_.argv;
    // The descriptors' numbers in the child lie above every descriptor handed over: no copy overwrites another.
    int highest = 3;
    for (const auto& fd : command_.fds) highest = std::max(highest, fd.get());
    for (std::size_t i = 0; i < command_.fds.size(); ++i) {
      command_.targets.push_back(highest + 1 + static_cast<int>(i));
      argv[target_args_[i]] = std::to_string(command_.targets.back());
    }
    argv.insert(argv.end(), {"--chdir", workdir, "--"});
    if (root_) {
      auto id = std::to_string(uid);
      argv.insert(argv.end(), {setpriv_.string(), "--reuid", id, "--regid", id, "--clear-groups", "--no-new-privs",
                               "--inh-caps=-all", "--bounding-set=-all", "--"});
    }
    argv.insert(argv.end(), program.begin(), program.end());
    return std::move(command_);
  }

 private:
  const bool root_ = ::geteuid() == 0;
  fs::path setpriv_;
  SandboxedCommand command_;
  std::vector<std::size_t> target_args_;  // where in argv each descriptor's number goes
  std::set<fs::path> made_{"/", "/tmp", "/usr", "/proc", "/dev", "/etc"};
};

}  // namespace

SandboxedCommand sandboxed_command(const WorkerConfig& config, const std::vector<std::string>& worker_argv,
                                   const FunctionSpec* function) {
  auto network = function != nullptr ? function->network : config.network;
  CommandBuilder builder(network == FunctionNetwork::host, config.tmp_mb);
  builder.bind(worker_argv.front(), worker_argv.front());
  std::string workdir = "/tmp";
  if (function != nullptr) {
    // At its final place, also while an upload is staged: there, only this version is in view.
    auto folder = function->source.parent_path();
    builder.bind(function->staged_source.empty() ? folder : function->staged_source.parent_path(), folder);
    for (const auto& dir : function->site_dirs) builder.bind(dir, dir);
    workdir = folder.string();
  }
  static std::atomic<unsigned> next_uid{0};
  return builder.finish(workdir, first_worker_uid + next_uid++ % worker_uids, worker_argv);
}

SandboxedCommand sandboxed_build(const WorkerConfig& config, const std::vector<std::string>& argv,
                                 const fs::path& writable, const std::vector<fs::path>& readable) {
  // pip needs the package index (the network), and room in /tmp to unpack and build.
  CommandBuilder builder(true, std::max<std::size_t>(config.tmp_mb, 2048));
  for (const auto& path : readable) builder.bind(path, path);
  builder.bind(writable, writable, true);
  return builder.finish("/tmp", build_uid, argv);
}

}  // namespace faas::runtime
