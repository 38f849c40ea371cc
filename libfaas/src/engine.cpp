// faas::Engine: construction, admission of invocations, reads, status and shutdown. Uploads and deletes are in
// upload.cpp, the function table in registry.cpp, the JSON forms of the vocabulary in json_forms.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <future>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine_state.hpp"
#include "faas/engine.hpp"
#include "runtime/python_host.hpp"
#include "sysinfo/sysinfo.hpp"
#include "util/hash.hpp"
#include "util/ids.hpp"
#include "util/names.hpp"
#include "util/time.hpp"

namespace fs = std::filesystem;

namespace faas {

namespace {

constexpr std::size_t max_request_id = 256;

[[noreturn]] void throw_not_found(std::string_view name) {
  throw Error(ErrorCode::not_found, "function '" + std::string(name) + "' not found");
}

}  // namespace

struct Engine::Impl : EngineState {
  using EngineState::EngineState;
};

EngineState::EngineState(EngineConfig cfg)
    : config(std::move(cfg)),
      max_in_flight(static_cast<std::uint64_t>(config.max_queue) + std::max(1u, config.max_concurrency)) {
  if (config.data_dir.empty()) throw Error(ErrorCode::invalid_input, "data_dir must not be empty");
  std::error_code ec;
  fs::create_directories(config.data_dir / "functions", ec);
  fs::create_directories(config.data_dir / "envs", ec);
  if (ec) throw Error(ErrorCode::internal, "cannot create data dir " + config.data_dir.string() + ": " + ec.message());
  config.data_dir = fs::canonical(config.data_dir);
  // It holds every function's code, every record and faas-http's password: only its owner may enter. A dir of
  // another user's is left as it is.
  if (struct stat info {}; ::stat(config.data_dir.c_str(), &info) == 0 && info.st_uid == ::geteuid()) {
    fs::permissions(config.data_dir, fs::perms::owner_all, ec);
  }
  functions_dir = config.data_dir / "functions";
  remove_upload_leftovers(functions_dir);

  if (config.node_id.empty()) {
    // A second engine in the same process is another node.
    static std::atomic<unsigned> engines{0};
    auto count = engines.fetch_add(1);
    config.node_id = sysinfo::host_name() + ":" + std::to_string(::getpid()) +
                     (count == 0 ? "" : "." + std::to_string(count));
  }
  auto stores = store::open_stores(config, config.node_id);
  clustered = stores.shared;
  functions = std::move(stores.functions);

  runtime::ExecutorOptions options;
  options.threads = std::max(1u, config.max_concurrency);
  options.timeout = config.timeout;
  options.output_limit = config.output_limit;
  options.python = config.python;
  options.workers = config.workers;
  executor = runtime::make_executor(config.isolation, options, [this](std::unique_ptr<runtime::Call> call) {
    call->concurrency = {};  // it ran: its place is free before its caller hears of it
    log->append(std::move(call->record), std::move(call->done));
  });

  // Under the worker sandbox, pip (and whatever build backend it runs) is confined the same way.
  const bool sandboxed = config.isolation == Isolation::process && config.workers.sandbox;
  venvs = std::make_unique<envs::VenvCache>(envs::VenvOptions{config.data_dir / "envs", config.python,
                                                              config.pip_timeout, runtime::site_packages_suffix(),
                                                              config.pip_index,
                                                              sandboxed ? &config.workers : nullptr});
  venvs->remove_leftovers();

  log = std::make_unique<store::RecordLog>(
      std::move(stores.records), store::RecordLog::Options{config.log_retention, [this] { return in_flight.load(); }},
      [this](const Invocation& record, const std::string& json, bool stored) { committed(record, json, stored); },
      [this] { delivered(); });

  registry = std::make_unique<FunctionRegistry>(functions_dir, *functions, *venvs, *executor, config);
  if (config.schedules) scheduler = std::thread([this] { schedule_loop(*this); });
  async = std::make_unique<AsyncCalls>(*this);
  cluster = std::make_unique<Cluster>(*this);
}

void EngineState::committed(const Invocation& record, const std::string& json, bool stored) {
  completed.fetch_add(1, std::memory_order_relaxed);
  if (!record.ok() || !stored) failed.fetch_add(1, std::memory_order_relaxed);
  call_stats.record(record.function, record.ok() && stored, record.duration_ms, record.time_end);
  if (stored) feed.publish(record.id, record.function, json);
  std::lock_guard lock(running_mutex);
  running.erase(record.id);
}

bool EngineState::miss_read_due() {
  using Clock = std::chrono::steady_clock;
  constexpr auto spacing = std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(20)).count();
  auto now = Clock::now().time_since_epoch().count();
  auto last = last_miss_read.load(std::memory_order_relaxed);
  return now - last >= spacing && last_miss_read.compare_exchange_strong(last, now);
}

void EngineState::delivered() {
  if (in_flight.fetch_sub(1) == 1 && !accepting.load()) {
    std::lock_guard lock(drain_mutex);
    drained.notify_all();
  }
}

std::unique_ptr<runtime::Call> EngineState::admit(InvokeRequest& request) {
  auto spec = request.version == 0 ? registry->find(request.function)
                                    : registry->pinned(request.function, request.version);  // throws not_found
  if (!spec && clustered && request.version == 0 && miss_read_due()) {
    // Uploaded through another node a moment ago, before its notification arrived: a client behind a load
    // balancer must find what it just uploaded. Only a miss pays this read, and at most one per 20 ms, so that
    // calls of unknown names cannot keep the threads that admit calls waiting on the database.
    registry->sync();
    spec = registry->find(request.function);
  }
  if (!spec) {
    check_function_name(request.function);
    throw_not_found(request.function);
  }
  if (request.request_id.size() > max_request_id) {
    throw Error(ErrorCode::invalid_input, "request_id is longer than 256 characters");
  }
  if (request.request_id.empty()) request.request_id = make_uuid4();

  // Count first, then check: shutdown() clears `accepting` and then waits for the count to drain.
  if (in_flight.fetch_add(1) >= max_in_flight) {
    delivered();
    throw Error(ErrorCode::overloaded, "too many invocations in flight; retry later");
  }
  if (!accepting.load()) {
    delivered();
    throw Error(ErrorCode::shutting_down, "the engine is shutting down");
  }
  // Nothing runs that could not be recorded: while the store is away, calls are refused with a clear error.
  if (!log->available()) {
    delivered();
    throw Error(ErrorCode::store_unavailable, "the store is unreachable; invocations are refused until it is back");
  }
  auto call = std::make_unique<runtime::Call>();
  if (spec->max_concurrency) {
    call->concurrency = runtime::ConcurrencyToken(spec->in_flight);
    if (spec->in_flight->fetch_add(1, std::memory_order_relaxed) >= *spec->max_concurrency) {
      call.reset();  // gives its place back
      delivered();
      throw Error(ErrorCode::overloaded, "function '" + spec->name + "' is at its max_concurrency (" +
                                             std::to_string(*spec->max_concurrency) + "); retry later");
    }
  }
  call->function = std::move(spec);
  call->request = std::move(request);
  call->record.id =
      call->request.invocation_id.empty() ? make_time_ordered_uuid() : std::move(call->request.invocation_id);
  if (clustered) call->record.node = config.node_id;
  // A call continues its caller's trace. Without one, it gets a trace of its own only if its function asks for
  // its context (faas_context), to pass on: an id nobody can ever look up is not worth its bytes in every record.
  if (auto parent = parse_traceparent(call->request.traceparent)) {
    auto& record = call->record;
    record.trace_id = std::move(parent->trace_id);
    record.parent_span_id = std::move(parent->parent_id);
    record.trace_flags = std::move(parent->flags);
    record.span_id = make_span_id();
  }
  {
    std::lock_guard lock(running_mutex);
    running.insert(call->record.id);
  }
  return call;
}

Engine::Engine(EngineConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Engine::~Engine() { shutdown(); }

const EngineConfig& Engine::config() const noexcept { return impl_->config; }

FunctionInfo Engine::upload(std::string_view name, std::string_view code, std::optional<std::string_view> requirements) {
  return upload_function(*impl_, name, code, requirements, nullptr);
}

FunctionInfo Engine::upload(std::string_view name, std::string_view code, std::optional<std::string_view> requirements,
                            const nlohmann::json& settings_patch) {
  return upload_function(*impl_, name, code, requirements, &settings_patch);
}

void Engine::remove(std::string_view name) { remove_function(*impl_, name); }

std::vector<FunctionInfo> Engine::list() const { return impl_->functions->list(); }

FunctionInfo Engine::info(std::string_view name) const {
  check_function_name(name);
  auto found = impl_->functions->find(std::string(name));
  if (!found) throw_not_found(name);
  return *found;
}

std::string EngineState::start(InvokeRequest request, InvokeCallback done) {
  std::unique_ptr<runtime::Call> call;
  try {
    call = admit(request);
  } catch (const Error& e) {
    done(e);
    return {};
  }
  std::string id = call->record.id;
  call->done = std::move(done);
  executor->submit(std::move(call));
  return id;
}

std::string Engine::invoke_async(InvokeRequest request, InvokeCallback done) {
  return impl_->start(std::move(request), std::move(done));
}

std::vector<std::string> Engine::run_schedules(std::chrono::system_clock::time_point minute) {
  return fire_schedules(*impl_, minute);
}

InvocationResult Engine::invoke(InvokeRequest request) {
  auto& engine = *impl_;
  auto call = engine.admit(request);
  std::promise<Outcome<InvocationResult>> promise;
  auto future = promise.get_future();
  auto deliver = [&promise](Outcome<InvocationResult> outcome) { promise.set_value(std::move(outcome)); };
  // A lone caller runs the function and commits its record on its own thread; under load it queues like
  // everyone else.
  if (engine.executor->run_inline(*call)) {
    call->concurrency = {};
    if (auto committed = engine.log->commit_inline(call->record)) {
      engine.delivered();
      if (!committed->ok()) throw committed->error();
      return std::move(*committed).value();
    }
    engine.log->append(std::move(call->record), deliver);
  } else {
    call->done = deliver;
    engine.executor->submit(std::move(call));
  }
  auto outcome = future.get();
  if (!outcome.ok()) throw outcome.error();
  return std::move(outcome).value();
}

InvocationResult Engine::invoke(std::string_view name, const nlohmann::json& args) {
  if (!args.is_array()) throw Error(ErrorCode::invalid_input, "args must be a JSON array");
  InvokeRequest request;
  request.function = std::string(name);
  request.args = to_json_text(args);
  return invoke(std::move(request));
}

std::string Engine::accept(const AcceptedRequest& accepted, std::function<void(std::optional<Error>)> done) {
  const auto& request = accepted.request;
  std::string id = request.invocation_id.empty() ? make_time_ordered_uuid() : request.invocation_id;
  store::RecordLog::InboxEntry entry;
  entry.id = id;
  entry.source = accepted.source;
  entry.function = request.function;
  entry.body = invoke_body(request);
  entry.reply = accepted.reply;
  impl_->log->accept(std::move(entry), std::move(done));
  return id;
}

void Engine::settle(std::string invocation_id) { impl_->log->settle(std::move(invocation_id)); }

namespace {

std::vector<AcceptedRequest> to_accepted(std::vector<store::InboxEntry> entries) {
  std::vector<AcceptedRequest> out;
  for (auto& entry : entries) {
    AcceptedRequest accepted{std::move(entry.source), {}, std::move(entry.reply)};
    accepted.request.function = std::move(entry.function);
    accepted.request.invocation_id = std::move(entry.id);
    parse_invoke_body(entry.body, accepted.request);
    out.push_back(std::move(accepted));
  }
  return out;
}

}  // namespace

std::vector<AcceptedRequest> Engine::unsettled(std::string_view source) const {
  return to_accepted(impl_->log->inbox(std::string(source)));
}

void Engine::take_up(const std::string& source, std::function<void(std::vector<AcceptedRequest>)> handler) {
  impl_->cluster->take_up(source, [handler = std::move(handler)](std::vector<store::InboxEntry> entries) {
    handler(to_accepted(std::move(entries)));
  });
}

std::vector<NodeInfo> Engine::nodes() const { return impl_->cluster->nodes(); }

bool Engine::store_available() const { return impl_->log->available(); }

void Engine::serve_async(const std::string& source, AsyncFinished finished) {
  impl_->async->serve(source, std::move(finished));
}

void Engine::submit_async(const std::string& source, InvokeRequest request, AsyncOptions options,
                          std::function<void(Outcome<std::string>)> accepted) {
  impl_->async->submit(source, std::move(request), std::move(options), std::move(accepted));
}

std::optional<AsyncCall> Engine::async_call(std::string_view id) const { return impl_->async->find(id); }

std::vector<AsyncCall> Engine::dead_letters() const { return impl_->async->dead(); }

void Engine::redrive(std::string_view id) { impl_->async->redrive(id); }

void Engine::discard_dead_letter(std::string_view id) { impl_->async->discard(id); }

std::size_t Engine::import_records(std::string_view name, const std::vector<std::string>& records) {
  info(name);  // not_found / invalid_name
  std::vector<store::RecordLog::Imported> rows;
  const auto now_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Invocation::Clock::now().time_since_epoch()).count());
  for (const auto& text : records) {
    auto record = nlohmann::json::parse(text, nullptr, false);
    if (!record.is_object()) throw Error(ErrorCode::invalid_input, "a record to import must be a JSON object");
    // Kept as its own text (every number's digits as they were), with "function" put first when it has none.
    std::string kept = text;
    if (!record.contains("function")) {
      auto brace = kept.find('{');
      kept.insert(brace + 1, "\"function\":" + nlohmann::json(std::string(name)).dump() + (record.empty() ? "" : ","));
    }
    std::uint64_t millis = now_ms;
    if (auto start = record.find("time_start"); start != record.end() && start->is_string()) {
      if (auto when = parse_local_time(start->get<std::string>())) {
        millis = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(when->time_since_epoch()).count());
      }
    }
    // Keyed by its time and its content: importing the same record again adds nothing.
    auto digest = sha256_hex(kept);
    rows.push_back({make_uuid_at(millis, std::stoull(digest.substr(0, 16), nullptr, 16)), std::string(name),
                    std::move(kept)});
  }
  return impl_->log->import(std::move(rows));
}

std::vector<std::string> Engine::logs(std::string_view name, std::size_t limit) const {
  info(name);  // not_found / invalid_name
  return impl_->log->read(std::string(name), limit);
}

std::optional<std::string> Engine::record(std::string_view invocation_id) const {
  return impl_->log->find(std::string(invocation_id));
}

std::shared_ptr<RecordFollower> Engine::follow(FollowOptions options, std::function<void()> wake) {
  if (!options.function.empty()) info(options.function);  // not_found / invalid_name
  auto id_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'; };
  if (options.after.size() > 64 || !std::all_of(options.after.begin(), options.after.end(), id_char)) {
    throw Error(ErrorCode::invalid_input, "the record id to follow after is not one");
  }
  if (options.max_buffered == 0) throw Error(ErrorCode::invalid_input, "max_buffered must be at least 1");
  auto follower = std::make_shared<RecordFollower>(std::move(options), std::move(wake));
  const auto& wanted = follower->options();
  if (impl_->feed.subscribe(follower) || wanted.after.empty()) return follower;
  // Not among the last records committed here (a restart, or a long absence): what the store holds after it.
  RecordFollower::Records earlier;
  for (auto& stored : impl_->log->read_after(wanted.function, wanted.after, RecordFeed::ring_records)) {
    earlier.push_back(std::make_shared<const FollowedRecord>(
        FollowedRecord{std::move(stored.id), std::move(stored.function), std::move(stored.json)}));
  }
  follower->replay_before(std::move(earlier));
  return follower;
}

Stats Engine::stats() const { return impl_->call_stats.snapshot(std::chrono::system_clock::now()); }

std::vector<FunctionVersion> Engine::versions(std::string_view name) const {
  info(name);  // not_found / invalid_name
  return impl_->functions->versions(std::string(name));
}

FunctionInfo Engine::rollback(std::string_view name, std::uint64_t version) {
  check_function_name(name);
  auto row = impl_->functions->version(std::string(name), version);
  if (!row) {
    info(name);  // not_found for the function itself
    throw Error(ErrorCode::not_found, "function '" + std::string(name) + "' has no version " +
                                          std::to_string(version) + " (see its versions)");
  }
  std::optional<std::string_view> requirements;
  if (row->source.requirements) requirements = *row->source.requirements;
  return upload_function(*impl_, name, row->source.code, requirements, nullptr, version);
}

FunctionSettings Engine::settings(std::string_view name) const {
  check_function_name(name);
  auto found = impl_->functions->settings(std::string(name));
  if (!found) throw_not_found(name);
  return *found;
}

FunctionSettings Engine::update_settings(std::string_view name, const nlohmann::json& patch) {
  return faas::update_settings(*impl_, name, patch);
}

std::optional<bool> Engine::is_public(std::string_view name) const {
  auto spec = impl_->registry->find(std::string(name));
  return spec ? spec->is_public : std::nullopt;
}

Engine::InvocationState Engine::invocation_state(std::string_view invocation_id) const {
  std::string id(invocation_id);
  {
    // Looked up before the database: an id leaves this set only after its record is committed.
    std::lock_guard lock(impl_->running_mutex);
    if (impl_->running.count(id) != 0) return InvocationState::running;
  }
  return impl_->log->find(id) ? InvocationState::committed : InvocationState::unknown;
}

Status Engine::status() const {
  auto& engine = *impl_;
  Status status;
  auto sample = engine.sampler.sample();
  status.cpu_percent = sample.cpu_percent;
  status.process_cpu_percent = sample.process_cpu_percent;
  status.process_milicpu = sample.process_cpu_percent * 10.0;
  status.process_rss_mb = sample.process_rss_mb;
  status.system_memory = {sample.memory_total_mb, sample.memory_available_mb, sample.memory_used_mb,
                          sample.memory_percent};
  status.ram_percent = sample.memory_percent;
  status.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - engine.started).count();
  status.loaded_functions = engine.executor->loaded_count();
  status.invocations = engine.completed.load();
  status.invocation_errors = engine.failed.load();
  status.in_flight = engine.in_flight.load();
  status.scheduled = engine.scheduled.load();
  status.queued = engine.executor->queued();
  auto workers = engine.executor->workers();
  status.workers = workers.total;
  status.workers_busy = workers.busy;
  status.isolation = std::string(to_string(engine.config.isolation));
  status.node = engine.config.node_id;
  status.store = engine.clustered ? "postgresql" : "sqlite";
  status.nodes = engine.cluster->live_nodes();
  status.timestamp = format_local_time(Invocation::Clock::now());
  return status;
}

void Engine::drain() {
  auto& engine = *impl_;
  std::call_once(engine.drain_once, [&engine] {
    engine.async->stop();  // calls waiting for an attempt stay in the store for the next start
    engine.cluster->stop_taking();
    engine.accepting = false;
    std::unique_lock lock(engine.drain_mutex);
    auto limit = engine.config.timeout + std::chrono::seconds(5);
    if (!engine.drained.wait_for(lock, limit, [&] { return engine.in_flight.load() == 0; })) {
      spdlog::warn("{} invocations still running at shutdown", engine.in_flight.load());
    }
  });
}

void Engine::shutdown() {
  drain();
  auto& engine = *impl_;
  std::call_once(engine.shutdown_once, [&engine] {
    {
      std::lock_guard lock(engine.scheduler_mutex);
      engine.scheduler_stop = true;
    }
    engine.scheduler_cv.notify_all();
    if (engine.scheduler.joinable()) engine.scheduler.join();
    engine.registry->stop();
    engine.executor->stop();
    engine.log->stop();
    engine.cluster->leave();  // after the last settle: what is left, another node takes up at once
  });
}

}  // namespace faas
