// The confinement mechanism on its own: a shell started confined, and what it can see and do.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "faas/error.hpp"
#include "runtime/sandbox.hpp"
#include "test_support.hpp"
#include "util/confinement.hpp"
#include "util/subprocess.hpp"

namespace faas {
namespace {

namespace fs = std::filesystem;

// A confinement like a worker's (the system read-only, /tmp, /proc, /dev, the filter), nothing of a function.
Confinement basic(bool network = true) {
  WorkerConfig config;
  config.network = network ? FunctionNetwork::host : FunctionNetwork::none;
  return runtime::worker_confinement(config, "/usr/bin/sh", nullptr);
}

ProcessResult shell(const Confinement& confinement, const std::string& script) {
  ProcessOptions options;
  options.timeout = std::chrono::seconds(20);
  options.confinement = &confinement;
  return run_process({"/usr/bin/sh", "-c", script}, options);
}

TEST(Confinement, AShellSeesItsOwnRootAndIsNobodyWithoutCapabilities) {
  auto result = shell(basic(), "echo $$; id -u; ls /; grep -E '^Cap(Prm|Eff|Bnd|Amb)' /proc/self/status; "
                               "grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status; hostname");
  ASSERT_TRUE(result.ok()) << result.output;
  std::istringstream lines(result.output);
  std::string pid, uid;
  lines >> pid >> uid;
  EXPECT_EQ(pid, "1") << "the first process of its PID namespace";
  if (::geteuid() == 0) {
    EXPECT_GE(std::stoull(uid), 3'000'000'000ull) << "a uid of its own, no account's";
  } else {
    EXPECT_EQ(uid, "65534") << "nobody, in a user namespace";
  }
  for (const char* seen : {"usr", "etc", "tmp", "proc", "dev", "bin"}) {
    EXPECT_NE(result.output.find(std::string("\n") + seen + "\n"), std::string::npos) << seen << ": " << result.output;
  }
  for (const char* unseen : {"root", "home", "var", "work", "opt", "srv"}) {
    EXPECT_EQ(result.output.find(std::string("\n") + unseen + "\n"), std::string::npos) << unseen;
  }
  for (const char* set : {"CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000",
                          "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2", "\nfaas\n"}) {
    EXPECT_NE(result.output.find(set), std::string::npos) << set << ": " << result.output;
  }
}

TEST(Confinement, ReadOnlyAndWritableBindsAreWhatTheySay) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "ro");
  fs::create_directories(dir.path() / "rw");
  std::ofstream(dir.path() / "ro" / "note") << "seen";
  fs::permissions(dir.path() / "rw", fs::perms::all);
  auto confinement = basic();
  confinement.bind(dir.path() / "ro", "/data/ro");
  confinement.bind(dir.path() / "rw", "/data/rw", true);
  auto result = shell(confinement, "cat /data/ro/note; echo; touch /data/ro/x && echo wrote-ro; "
                                   "echo made > /data/rw/out && echo wrote-rw; touch /usr/x && echo wrote-usr; "
                                   "touch /x && echo wrote-root; ls /data 2>&1 || echo unlisted; "
                                   "head -c 1 /dev/urandom > /tmp/r && echo wrote-tmp");
  EXPECT_NE(result.output.find("seen\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("wrote-rw"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("wrote-tmp"), std::string::npos) << result.output;
  for (const char* refused : {"wrote-ro", "wrote-usr", "wrote-root"}) {
    EXPECT_EQ(result.output.find(refused), std::string::npos) << refused << ": " << result.output;
  }
  EXPECT_TRUE(fs::exists(dir.path() / "rw" / "out"));
  EXPECT_FALSE(fs::exists(dir.path() / "ro" / "x"));
  // The folders made on the way to a bind can be passed through, not listed (when the program does not own them).
  if (::geteuid() == 0) {
    EXPECT_NE(result.output.find("unlisted"), std::string::npos) << result.output;
  }
}

TEST(Confinement, WithoutNetworkOnlyLoopbackIsThereAndUp) {
  auto result = shell(basic(false), "cat /proc/net/dev; cat /sys/class/net/lo/operstate 2>/dev/null; "
                                    "grep -c ':' /proc/net/dev");
  ASSERT_TRUE(result.ok()) << result.output;
  EXPECT_NE(result.output.find("lo:"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("eth"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("\n1\n"), std::string::npos) << "one interface: " << result.output;
}

TEST(Confinement, NothingOutlivesTheFirstProcess) {
  // A daemon holding the output pipe: run_process waits for every writer, so it returns at once only if the
  // daemon died with the shell (else it would time out after 20 s).
  auto started = std::chrono::steady_clock::now();
  auto result = shell(basic(), "(setsid sleep 30 &) ; sleep 0.1; echo started");
  EXPECT_TRUE(result.ok()) << result.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST(Confinement, AStepTheKernelRefusesIsNamed) {
  auto confinement = basic();
  confinement.workdir = "/no/such/folder";
  try {
    shell(confinement, "true");
    ADD_FAILURE() << "started";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("enter its working directory"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace faas
