// Schedules: at each minute the engine runs the functions whose `schedule` setting names it. A tick is claimed in
// the store before it fires, so engines and servers sharing a data dir fire each one once.
#include <ctime>

#include <spdlog/spdlog.h>

#include "engine_state.hpp"

namespace faas {

namespace {

using std::chrono::minutes;
using std::chrono::system_clock;

constexpr std::int64_t kept_ticks_minutes = 24 * 60;  // claims older than a day are forgotten

}  // namespace

std::vector<std::string> fire_schedules(EngineState& engine, system_clock::time_point minute) {
  auto start = std::chrono::floor<minutes>(minute);
  std::time_t seconds = system_clock::to_time_t(start);
  std::tm local{};
  ::localtime_r(&seconds, &local);
  const std::int64_t tick = seconds / 60;
  std::vector<std::string> started;
  auto scheduled = engine.registry->scheduled();
  if (scheduled.empty()) return started;  // no store write each minute for an engine with no schedule
  for (const auto& spec : scheduled) {
    for (std::size_t entry = 0; entry < spec->schedule.size(); ++entry) {
      const auto& run = spec->schedule[entry];
      if (!run.cron.matches(local)) continue;
      try {
        if (!engine.functions->claim_tick(spec->name, entry, tick)) continue;  // fired by another engine
      } catch (const Error& e) {
        spdlog::warn("function {}: schedule not fired: {}", spec->name, e.what());
        continue;
      }
      InvokeRequest request;
      request.function = spec->name;
      request.args = run.args;
      request.kwargs = run.kwargs;
      request.trigger = "schedule";
      auto id = engine.start(std::move(request), [name = spec->name](Outcome<InvocationResult> outcome) {
        if (!outcome.ok()) spdlog::warn("function {}: scheduled call refused: {}", name, outcome.error().what());
      });
      if (!id.empty()) {
        engine.scheduled.fetch_add(1, std::memory_order_relaxed);
        started.push_back(std::move(id));
      }
    }
  }
  try {
    engine.functions->forget_ticks_before(tick - kept_ticks_minutes);
  } catch (const Error& e) {
    spdlog::warn("cannot forget old schedule ticks: {}", e.what());
  }
  return started;
}

void schedule_loop(EngineState& engine) {
  // Each minute as it begins; a clock that jumps (or a machine that slept) fires the minute it wakes in, and
  // never the ones it skipped.
  auto next = std::chrono::floor<minutes>(system_clock::now()) + minutes(1);
  std::unique_lock lock(engine.scheduler_mutex);
  while (!engine.scheduler_stop) {
    engine.scheduler_cv.wait_until(lock, next, [&] { return engine.scheduler_stop; });
    if (engine.scheduler_stop) break;
    auto now = system_clock::now();
    if (now < next) continue;
    lock.unlock();
    engine.call_stats.sample_server(now);
    try {
      fire_schedules(engine, now);
    } catch (const std::exception& e) {
      spdlog::warn("schedules not fired: {}", e.what());
    }
    lock.lock();
    next = std::chrono::floor<minutes>(now) + minutes(1);
  }
}

}  // namespace faas
