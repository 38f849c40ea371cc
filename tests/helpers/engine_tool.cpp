// A second process for the tests: drives its own Engine on a data dir shared with the test.
//   engine_tool upload DIR NAME CODE       uploads a function
//   engine_tool remove DIR NAME            deletes it
//   engine_tool burst DIR NAME             invokes NAME with 256 calls in flight until killed, printing the id of
//                                          each invocation once it is acknowledged (committed), one per line
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "faas/engine.hpp"

namespace {

void write_line(const std::string& text) {
  std::string line = text + "\n";
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(1, p, left);
    if (n <= 0) std::_Exit(3);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

int burst(faas::Engine& engine, const std::string& name) {
  std::mutex mutex;
  std::condition_variable slots_free;
  int in_flight = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex);
      slots_free.wait(lock, [&] { return in_flight < 256; });
      ++in_flight;
    }
    faas::InvokeRequest request;
    request.function = name;
    request.args = "[1, 2]";
    engine.invoke_async(std::move(request), [&](faas::Outcome<faas::InvocationResult> outcome) {
      if (outcome.ok()) {
        std::lock_guard lock(mutex);  // one whole line at a time
        write_line(outcome.value().record.id);
      }
      std::lock_guard lock(mutex);
      --in_flight;
      slots_free.notify_one();
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: engine_tool upload|remove|burst DIR NAME [CODE]\n");
    return 2;
  }
  std::string command = argv[1];
  faas::EngineConfig config;
  config.data_dir = argv[2];
  std::string name = argv[3];
  try {
    faas::Engine engine(config);
    if (command == "upload" && argc == 5) {
      engine.upload(name, argv[4]);
    } else if (command == "remove") {
      engine.remove(name);
    } else if (command == "burst") {
      return burst(engine, name);
    } else {
      std::fprintf(stderr, "unknown command %s\n", command.c_str());
      return 2;
    }
  } catch (const faas::Error& e) {
    std::fprintf(stderr, "engine_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}
