// mqtt_bench: MQTT load through a broker, on the same Paho C++ client faas-mqtt uses (bench/mqtt_load.sh).
//   mqtt_bench echo BROKER            answers faas/invoke/+ on faas/response/invoke/<name> with a small JSON body
//                                     carrying the request's request_id: the ceiling the broker allows.
//   mqtt_bench load BROKER SECONDS WINDOW [FUNCTION]
//                                     keeps WINDOW QoS 1 invocations of FUNCTION (default add, args [1,2]) in
//                                     flight for SECONDS and prints answers/s and p50/p99 round-trip latency.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <mqtt/async_client.h>
#include <nlohmann/json.hpp>

#include "tcp_nodelay.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int port_of(const std::string& uri) { return std::stoi(uri.substr(uri.rfind(':') + 1)); }

std::unique_ptr<mqtt::async_client> connect(const std::string& broker, const std::string& id) {
  auto client = std::make_unique<mqtt::async_client>(broker, id, mqtt::create_options(MQTTVERSION_3_1_1), nullptr);
  client->connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
  faas::mqtt::set_tcp_nodelay_to_port(port_of(broker));  // as faas-mqtt does; otherwise each QoS 1 hop waits ~40 ms
  return client;
}

std::atomic<bool> stop{false};

int echo(const std::string& broker) {
  auto client = connect(broker, "bench-echo");
  client->set_message_callback([&client](mqtt::const_message_ptr message) {
    auto request = nlohmann::json::parse(message->get_payload_str(), nullptr, false);
    std::string request_id = request.is_object() && request.contains("request_id") ? request["request_id"] : "";
    std::string name = message->get_topic().substr(message->get_topic().rfind('/') + 1);
    std::string answer = nlohmann::json{{"request_id", request_id}, {"result", 3}, {"status", "success"}}.dump();
    client->publish(mqtt::make_message("faas/response/invoke/" + name, answer, 1, false));
  });
  client->subscribe("faas/invoke/+", 1)->wait();
  std::fprintf(stderr, "listening on faas/invoke/+\n");
  std::signal(SIGTERM, [](int) { stop = true; });
  std::signal(SIGINT, [](int) { stop = true; });
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  client->disconnect()->wait();
  return 0;
}

int load(const std::string& broker, double seconds, int window, const std::string& function) {
  auto client = connect(broker, "bench-load");
  std::mutex mutex;
  std::condition_variable done_cv;
  std::unordered_map<std::string, Clock::time_point> in_flight;
  std::vector<double> latencies_us;
  std::uint64_t next = 0;
  bool measuring = true;
  const std::string topic = "faas/invoke/" + function;

  // Publishing takes Paho's lock, which its thread holds while it runs our callback: never publish under `mutex`.
  auto register_one = [&]() {
    std::string id = "b-" + std::to_string(next++);
    in_flight.emplace(id, Clock::now());
    return id;
  };
  auto send = [&](const std::string& id) {
    client->publish(mqtt::make_message(topic, R"({"args":[1,2],"request_id":")" + id + "\"}", 1, false));
  };
  client->set_message_callback([&](mqtt::const_message_ptr message) {
    auto body = nlohmann::json::parse(message->get_payload_str(), nullptr, false);
    if (!body.is_object() || !body.contains("request_id")) return;
    std::string next_id;
    {
      std::lock_guard lock(mutex);
      auto it = in_flight.find(body["request_id"].get<std::string>());
      if (it == in_flight.end()) return;
      latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - it->second).count());
      in_flight.erase(it);
      if (measuring) next_id = register_one();
      if (in_flight.empty()) done_cv.notify_all();
    }
    if (!next_id.empty()) send(next_id);
  });
  client->subscribe("faas/response/invoke/" + function, 1)->wait();

  auto started = Clock::now();
  std::vector<std::string> first;
  {
    std::lock_guard lock(mutex);
    for (int i = 0; i < window; ++i) first.push_back(register_one());
  }
  for (const auto& id : first) send(id);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  std::unique_lock lock(mutex);
  measuring = false;
  auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  std::size_t answered = latencies_us.size();
  done_cv.wait_for(lock, std::chrono::seconds(10), [&] { return in_flight.empty(); });
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) { return latencies_us.empty() ? 0 : latencies_us[std::size_t(p * (latencies_us.size() - 1))]; };
  std::printf("answers %zu in %.1f s: %.0f/s  p50 %.0f us  p99 %.0f us  unanswered %zu\n", answered, elapsed,
              answered / elapsed, pct(0.5), pct(0.99), in_flight.size());
  lock.unlock();
  client->disconnect()->wait();
  return in_flight.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "echo" && argc == 3) return echo(argv[2]);
  if (mode == "load" && argc >= 5) return load(argv[2], std::atof(argv[3]), std::atoi(argv[4]), argc > 5 ? argv[5] : "add");
  std::fprintf(stderr, "usage: mqtt_bench echo BROKER | mqtt_bench load BROKER SECONDS WINDOW [FUNCTION]\n");
  return 2;
}
