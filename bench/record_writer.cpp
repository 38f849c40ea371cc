// The record writer alone: how many invocation records per second the log commits to a store, every record
// committed before its callback runs (as an answered invocation's is). Callers keep WINDOW records in flight, as
// an engine with that many invocations outstanding does; the writer batches what queues up.
//
//   record_writer STORE [SECONDS=5] [WINDOW=256]     STORE: a data dir for SQLite, or a postgresql:// URI
// Prints one line: "<store> records/s <n> batches... p50_us <commit-to-callback>" (bench/cluster_load.py).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "faas/config.hpp"
#include "store/open_store.hpp"
#include "store/postgres.hpp"
#include "store/record_log.hpp"
#include "util/ids.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: record_writer STORE [SECONDS] [WINDOW]\n");
    return 2;
  }
  std::string target = argv[1];
  double seconds = argc > 2 ? std::stod(argv[2]) : 5.0;
  std::size_t window = argc > 3 ? std::stoul(argv[3]) : 256;

  faas::EngineConfig config;
  config.log_retention = 0;
  if (faas::store::pg::is_uri(target)) {
    config.store = target;
  } else {
    config.data_dir = target;
    std::filesystem::create_directories(target);
  }
  auto stores = faas::store::open_stores(config, "bench");
  std::mutex mutex;
  std::condition_variable freed;
  std::size_t in_flight = 0;
  std::atomic<std::uint64_t> committed{0}, failed{0};
  faas::store::RecordLog log(
      std::move(stores.records), {0, [&] { return window; }},
      [](const faas::Invocation&, const std::string&, bool) {}, [] {});

  auto started = std::chrono::steady_clock::now();
  auto deadline = started + std::chrono::duration<double>(seconds);
  std::uint64_t appended = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::unique_lock lock(mutex);
      freed.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    faas::Invocation record;
    record.id = faas::make_time_ordered_uuid();
    record.function = "add";
    record.args = "[1,2]";
    record.result = "3";
    record.request_id = faas::make_time_ordered_uuid();
    record.time_start = record.time_end = faas::Invocation::Clock::now();
    log.append(std::move(record), [&](faas::Outcome<faas::InvocationResult> outcome) {
      (outcome.ok() ? committed : failed).fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(mutex);
      --in_flight;
      freed.notify_one();
    });
    ++appended;
  }
  log.flush();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log.stop();
  std::printf("%s records/s %.0f committed %llu failed %llu window %zu seconds %.1f\n",
              faas::store::describe_store(config.store).c_str(), static_cast<double>(committed.load()) / elapsed,
              static_cast<unsigned long long>(committed.load()), static_cast<unsigned long long>(failed.load()),
              window, elapsed);
  return failed.load() == 0 && committed.load() == appended ? 0 : 1;
}
