#include "envs/venv_cache.hpp"

#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "envs/requirements.hpp"
#include "runtime/sandbox.hpp"
#include "faas/error.hpp"
#include "util/files.hpp"
#include "util/hash.hpp"
#include "util/ids.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;

namespace faas::envs {

namespace {

constexpr std::string_view temp_prefix = ".tmp-";

std::string describe_failure(const std::string& step, const ProcessResult& result) {
  std::string why = result.timed_out        ? "timed out"
                    : result.signal != 0    ? "was killed by signal " + std::to_string(result.signal)
                                            : "exited with status " + std::to_string(result.exit_code);
  std::string tail = result.output.size() > 4000 ? "..." + result.output.substr(result.output.size() - 4000)
                                                 : result.output;
  return step + " " + why + ":\n" + tail;
}

}  // namespace

std::string normalize_requirements(std::string_view requirements) {
  std::string out;
  std::size_t start = 0;
  while (start <= requirements.size()) {
    auto end = requirements.find('\n', start);
    if (end == std::string_view::npos) end = requirements.size();
    auto line = requirements.substr(start, end - start);
    auto first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') {
      auto last = line.find_last_not_of(" \t\r");
      out.append(line.substr(first, last - first + 1));
      out.push_back('\n');
    }
    start = end + 1;
  }
  return out;
}

std::string env_id(std::string_view normalized_requirements) {
  if (normalized_requirements.empty()) return {};
  return sha256_hex(normalized_requirements).substr(0, 32);
}

VenvCache::VenvCache(VenvOptions options) : options_(std::move(options)) {
  fs::create_directories(options_.envs_dir);
}

bool VenvCache::exists(const std::string& id) const { return fs::is_directory(site_packages(id)); }

namespace {

// Local paths pip is told of through its settings (find-links, certificates, a file index): the sandboxed pip
// must see them.
std::vector<fs::path> pip_readable_paths(const std::string& pip_index) {
  std::vector<std::string> candidates{pip_index};
  for (const char* name : {"PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "SSL_CERT_FILE",
                           "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"}) {
    const char* value = std::getenv(name);
    if (value == nullptr) continue;
    std::istringstream words(value);
    for (std::string word; words >> word;) candidates.push_back(word);
  }
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto& candidate : candidates) {
    if (candidate.rfind("file://", 0) == 0) candidate.erase(0, 7);
    if (candidate.empty() || candidate[0] != '/' || !fs::exists(candidate, ec)) continue;
    fs::path path = fs::canonical(candidate, ec);
    if (!ec && path.string().rfind("/usr/", 0) != 0 && path.string().rfind("/etc/", 0) != 0) out.push_back(path);
  }
  return out;
}

// A root server's sandboxed pip runs as runtime::build_uid: it owns the virtualenv while building it.
void chown_tree(const fs::path& root, uid_t owner) {
  std::error_code ec;
  ::lchown(root.c_str(), owner, owner);
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    ::lchown(it->path().c_str(), owner, owner);
  }
}

}  // namespace

fs::path VenvCache::site_packages(const std::string& id) const {
  return options_.envs_dir / id / options_.site_packages_suffix;
}

void VenvCache::remove_leftovers() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.envs_dir, ec)) {
    if (entry.path().filename().string().rfind(temp_prefix, 0) == 0) fs::remove_all(entry.path(), ec);
  }
}

fs::path VenvCache::ensure(const std::string& id, std::string_view normalized_requirements) {
  if (exists(id)) return site_packages(id);
  FileLock lock(options_.envs_dir / (id + ".lock"));
  if (exists(id)) return site_packages(id);  // built by whoever held the lock before us

  auto started = std::chrono::steady_clock::now();
  auto temp = options_.envs_dir / (std::string(temp_prefix) + id + "-" + make_uuid4());
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } cleanup{temp};

  ProcessOptions venv_options;
  venv_options.timeout = std::chrono::minutes(1);
  auto venv = run_process({options_.python.string(), "-m", "venv", "--without-pip", temp.string()}, venv_options);
  if (!venv.ok()) throw Error(ErrorCode::build_failed, describe_failure("python -m venv", venv));
  if (!fs::is_directory(temp / options_.site_packages_suffix)) {
    throw Error(ErrorCode::build_failed, options_.python.string() + " made a virtualenv without " +
                                             options_.site_packages_suffix +
                                             ": it must be the same Python version as the embedded one");
  }

  check_requirements(normalized_requirements);  // also for requirements stored before this check existed
  auto requirements_file = temp / "requirements.txt";
  write_file_atomic(requirements_file, normalized_requirements);
  ProcessOptions pip_options;
  pip_options.timeout = options_.pip_timeout;
  pip_options.output_limit = 16 * 1024;
  // A minimal environment: pip's own settings and proxies from the operator, nothing else of the server's.
  pip_options.keep_env_only = {"PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "PIP_", "HTTP_PROXY", "HTTPS_PROXY",
                               "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE",
                               "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"};
  pip_options.set_env = {{"PIP_DISABLE_PIP_VERSION_CHECK", "1"}, {"PIP_NO_INPUT", "1"}};
  std::vector<std::string> command{options_.python.string(), "-m", "pip", "--python",
                                   (temp / "bin" / "python").string(), "install", "--no-warn-script-location"};
  if (!options_.pip_index.empty()) command.insert(command.end(), {"--index-url", options_.pip_index});
  command.insert(command.end(), {"-r", requirements_file.string()});
  std::optional<Confinement> confinement;
  if (options_.sandbox != nullptr) {
    // What pip installs may run code of its own (a build backend): it runs confined like a function, seeing the
    // new virtualenv (writable), the wheels and certificates the operator pointed pip at, and nothing else.
    confinement = runtime::build_confinement(*options_.sandbox, temp, pip_readable_paths(options_.pip_index));
    pip_options.confinement = &*confinement;
    pip_options.set_env["HOME"] = "/tmp";
    if (::geteuid() == 0) chown_tree(temp, runtime::build_uid);
  }
  auto pip = run_process(command, pip_options);
  if (::geteuid() == 0 && options_.sandbox != nullptr) chown_tree(temp, 0);
  if (!pip.ok()) throw Error(ErrorCode::build_failed, describe_failure("pip install", pip));

  fs::rename(temp, options_.envs_dir / id);
  cleanup.path.clear();
  spdlog::info("built virtualenv {} in {:.1f} s", id,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return site_packages(id);
}

}  // namespace faas::envs
