// server.hpp — faas-coap: the engine over CoAP (RFC 7252) on libcoap, with DTLS (pre-shared key), block-wise
// transfers (RFC 7959) and Observe (RFC 7641). Routes and their rules: docs/coap.md.
//
// One thread owns libcoap (it is not thread-safe) and runs its loop. A request is answered at once when it can be
// (an error, a retransmission answered before), else registered with libcoap as a separate response: the engine
// (or, for admin work that reads the store or runs pip, a small pool) finishes it on its own thread and posts the
// answer back through an eventfd; the loop then has libcoap send it, block-wise when it is larger than a datagram.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "exchanges.hpp"
#include "faas/engine.hpp"

struct coap_context_t;
struct coap_resource_t;
struct coap_session_t;
struct coap_pdu_t;
struct coap_async_t;
struct coap_string_t;

namespace faas::coap {

struct CoapConfig {
  std::string host = "0.0.0.0";
  unsigned short port = 5683;        // plain UDP: public invocations only
  unsigned short dtls_port = 5684;   // DTLS with the pre-shared key: everything
  bool public_invoke = false;        // every function invocable over plain UDP
  std::string psk_identity;          // the admin's key; both never empty once main() has run
  std::string psk_key;
  std::size_t max_body_bytes = 1024 * 1024;  // a request's body, block-wise or not
  unsigned blocking_threads = 4;     // uploads (pip), deletes, reads of the store
  Exchanges::Limits exchanges;
};

class Server {
 public:
  // Binds both ports. Throws std::runtime_error with one line when it cannot.
  Server(Engine& engine, const CoapConfig& config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // "HOST:PORT" of each endpoint, as bound.
  std::string udp_address() const;
  std::string dtls_address() const;

  // Serves on the calling thread until `stop` returns true (checked at least every 100 ms).
  void run(const std::function<bool()>& stop);

 private:
  struct Pending;
  struct Observed {
    coap_resource_t* resource = nullptr;
    std::string latest;  // the newest record committed since this server started; empty: none yet
  };
  using Work = std::function<Answer()>;

  static void on_request(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                         const coap_string_t* query, coap_pdu_t* response);
  static void on_logs(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                      const coap_string_t* query, coap_pdu_t* response);
  void handle(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
              const coap_string_t* query, coap_pdu_t* response);
  // Registers the request for a separate answer and runs `start` with what finishes it (any thread, once).
  // False when the request cannot be registered (its token is in use): it has not started.
  bool defer(coap_session_t* session, const coap_pdu_t* request, const std::string& peer, bool counted,
             const std::function<void(std::function<void(Answer)>)>& start);
  bool offload(coap_session_t* session, const coap_pdu_t* request, const std::string& peer, Work work);
  bool invoke(coap_session_t* session, const coap_pdu_t* request, const std::string& peer, std::string name,
              std::string body);
  // Sends an answer, block-wise when larger than the session allows, and keeps it for retransmissions.
  void answer(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
              const coap_string_t* query, coap_pdu_t* response, const Answer& reply, const std::string& peer);
  void observe(const std::string& function, std::string latest);
  // The request's body: whole, or put together from its blocks. Nullopt when it answered the request itself (the
  // next block, please; or why the body is refused).
  std::optional<std::string> take_body(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                                       const coap_string_t* query, coap_pdu_t* response, const std::string& peer,
                                       const std::string& path);
  // Whether an unauthenticated peer showed it receives at its address (its request echoes our challenge, or it
  // did so lately); if not, adds a fresh challenge (an Echo option) to the response.
  bool address_verified(const coap_pdu_t* request, coap_pdu_t* response, const std::string& peer);
  void take_posted();  // on the loop: finished calls, new records, the functions to observe
  void post(std::function<void()> change);  // from any thread: changes the posted state, wakes the loop
  // What the engine calls when records come: it outlives this server, so it reaches it through alive_.
  std::function<void()> record_waker();

  Engine& engine_;
  const CoapConfig& config_;
  coap_context_t* context_ = nullptr;
  coap_resource_t* unknown_ = nullptr;
  std::string udp_address_, dtls_address_;
  int wake_fd_ = -1;
  Exchanges exchanges_;
  Addresses verified_;
  Bodies bodies_;
  std::unordered_map<std::string, Observed> observed_;
  struct Alive {
    std::mutex mutex;
    Server* server = nullptr;
  };
  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();
  std::shared_ptr<RecordFollower> follower_;

  std::mutex posted_mutex_;
  std::vector<std::pair<coap_async_t*, Answer>> finished_;  // posted by other threads, taken by the loop
  std::optional<std::vector<std::string>> functions_;  // the function names, read off the loop every 2 s
  bool wake_sent_ = false;  // the eventfd was written since the loop last took what is posted
  std::atomic<bool> records_waiting_{false};
  std::atomic<bool> listing_{false};

  boost::asio::thread_pool blocking_;
};

}  // namespace faas::coap
