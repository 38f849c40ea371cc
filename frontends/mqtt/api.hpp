// api.hpp — faas-mqtt's topics over the engine (docs/mqtt.md), independent of the broker connection
// (transport.hpp): each message becomes an engine call, each result or Error an answer.
//
// handle() runs on Paho's thread and never blocks on Python, pip or the database: invocations go to
// Engine::invoke_async and are answered from its completion; uploads run on their own threads and the other admin
// commands on another, so a slow pip install holds up neither.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "config.hpp"
#include "faas/engine.hpp"
#include "transport.hpp"

namespace faas::mqtt {

class Api {
 public:
  // Sends an answer: topic, payload, and the request's reply-to (for its correlation data).
  using Publish = std::function<void(const std::string& topic, std::string payload, const ReplyTo& reply)>;

  Api(Engine& engine, const MqttConfig& config, Publish publish);
  ~Api();  // waits for admin commands still running

  // The topic filters to subscribe to: <base>/invoke/# (shared with the --shared-group) and <base>/admin/#.
  // Never the response tree.
  std::vector<std::string> filters() const;

  void handle(Message message);

  // Refuses admin commands from now on and waits for those running. Invocations still go to the engine, which
  // refuses them once it shuts down.
  void stop_taking_requests();

 private:
  void invoke(const std::string& topic, std::string name, const std::string& payload, ReplyTo reply);
  void administer(const std::string& topic, const std::string& payload, ReplyTo reply, bool retained);
  // A retained upload that would replace what this node has with something not newer: ignored, with a warning.
  bool stale_upload(const std::string& name, const nlohmann::json& request);
  // One admin command; returns the answer's JSON text. Throws Error.
  std::string run_admin(const std::string& command, const std::string& name, const nlohmann::json& request,
                        const std::string& request_id);
  std::string command_of(const std::string& topic) const;
  // A request that could not be processed, on <response>/error (and on its Response Topic, if it named one).
  void publish_error(const std::string& topic, const std::string& command, const std::string& request_id,
                     ErrorCode code, const std::string& error, const ReplyTo& reply);

  Engine& engine_;
  const MqttConfig& config_;
  Publish publish_;
  boost::asio::thread_pool uploads_;
  boost::asio::thread_pool admin_;
  std::string invoke_root_, invoke_prefix_, admin_prefix_;
  std::atomic<bool> stopping_{false};
};

}  // namespace faas::mqtt
