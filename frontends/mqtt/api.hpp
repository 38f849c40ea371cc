// api.hpp — faas-mqtt's topics over the engine (docs/mqtt.md), independent of the broker connection
// (transport.hpp): each message becomes an engine call, each result or Error an answer.
//
// handle() runs on the transport's thread and never blocks on Python, pip or the database. An invocation is
// committed to the engine's inbox before the broker gets its acknowledgement, then runs through
// Engine::invoke_async; its inbox entry is settled once the broker has acknowledged the answer, and resume()
// answers at start what a crash left unanswered. Uploads run on their own threads and the other admin commands on
// another, so a slow pip install holds up neither; they are acknowledged on arrival.
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
  // Sends an answer: topic, payload, the request's reply-to (for its correlation data), and what to run once the
  // broker has it.
  using Publish = std::function<void(const std::string& topic, std::string payload, const ReplyTo& reply,
                                     std::function<void()> delivered)>;

  Api(Engine& engine, const MqttConfig& config, Publish publish);
  ~Api();  // waits for admin commands still running

  // The topic filters to subscribe to: <base>/invoke/# (shared with the --shared-group) and <base>/admin/#.
  // Never the response tree.
  std::vector<std::string> filters() const;

  // Takes one message; `ack` acknowledges it to the broker (called once it is safe to).
  void handle(Message message, Ack ack);

  // Answers the invocations accepted before the last stop that were not answered then: from their records when
  // they had run, else by running them now; in a cluster, later, those of nodes that died the same way. Call once
  // at start, before connecting.
  void resume();

  // From now on requests are left unacknowledged (the broker keeps them for our next start) and admin commands
  // refused; waits for the admin commands running.
  void stop_taking_requests();

 private:
  // False when the message was not taken and must not be acknowledged now.
  bool route(Message& message, Ack& ack);
  void invoke(const std::string& topic, std::string name, const std::string& payload, std::string traceparent,
              ReplyTo reply, Ack ack);
  // Where an invocation's answer goes: the request's Response Topic, else <response>/invoke/<function>.
  // An invocation with "async": true: kept in the store, answered "accepted", its record published when done.
  void invoke_async(const std::string& topic, InvokeRequest request, const nlohmann::json& fields, ReplyTo reply,
                    Ack ack);
  std::string invoke_answer_topic(const std::string& function, const ReplyTo& reply) const;
  // Runs an accepted invocation and publishes its answer; the inbox entry is settled once the broker has it.
  // A call pinned to a version goes through the admin pool first (its first call may prepare that version).
  void run(InvokeRequest request, const std::string& topic, ReplyTo reply);
  void start(InvokeRequest request, const std::string& topic, ReplyTo reply);
  // resume()'s work for each batch of requests taken up.
  void answer(std::vector<AcceptedRequest> unanswered);
  void administer(const std::string& topic, const std::string& payload, ReplyTo reply, bool retained);
  // A retained upload that would replace what this node has with something not newer: ignored, with a warning.
  bool stale_upload(const std::string& name, const nlohmann::json& request);
  // One admin command; returns the answer's JSON text. Throws Error.
  std::string run_admin(const std::string& command, const std::string& name, const nlohmann::json& request,
                        const std::string& request_id);
  std::string command_of(const std::string& topic) const;
  // A request that could not be processed, on <response>/error (and on its Response Topic, if it named one).
  void publish_error(const std::string& topic, const std::string& command, const std::string& request_id,
                     ErrorCode code, const std::string& error, const ReplyTo& reply,
                     std::function<void()> delivered = {});

  Engine& engine_;
  const MqttConfig& config_;
  Publish publish_;
  boost::asio::thread_pool uploads_;
  boost::asio::thread_pool admin_;
  std::string invoke_root_, invoke_prefix_, admin_prefix_;
  std::atomic<bool> stopping_{false};
};

}  // namespace faas::mqtt
