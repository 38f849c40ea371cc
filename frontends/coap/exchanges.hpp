// exchanges.hpp — faas-coap's memory of recent requests, per peer: the answer each (peer, message id) got, so that
// a retransmitted request is answered again and never run twice, and how many calls each peer has running.
// Everything is bounded: answers are kept for CoAP's EXCHANGE_LIFETIME (247 s) at most, a peer keeps at most
// `per_peer` of them and all peers together `total` and `max_bytes`; the oldest go first. Not thread-safe: the
// CoAP thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace faas::coap {

struct Answer {
  unsigned code = 0;           // CoAP response code, class * 100 + detail (205 = 2.05 Content)
  std::string body;            // JSON
  int max_age = -1;            // seconds; -1: no Max-Age option
};

class Exchanges {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    std::chrono::seconds lifetime{247};
    std::size_t per_peer = 64;
    std::size_t total = 16384;
    std::size_t max_bytes = 32u << 20;
    unsigned running_per_peer = 64;  // calls of one peer in flight at once
  };

  Exchanges() = default;
  explicit Exchanges(Limits limits) : limits_(limits) {}

  // The answer kept for this request, if it was answered within the lifetime.
  const Answer* find(const std::string& peer, std::uint16_t message_id, Clock::time_point now);
  // Keeps the answer to a request.
  void remember(const std::string& peer, std::uint16_t message_id, Answer answer, Clock::time_point now);

  // A call of `peer` starts (false: it has running_per_peer running already) / ends.
  bool start_call(const std::string& peer);
  void end_call(const std::string& peer);

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  struct Entry {
    std::string key;
    std::string peer;
    Answer answer;
    Clock::time_point expires;
  };
  static std::string key_of(const std::string& peer, std::uint16_t message_id);
  void erase(std::list<Entry>::iterator it);
  void expire(Clock::time_point now);

  Limits limits_;
  std::list<Entry> entries_;  // oldest first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_;
  std::unordered_map<std::string, std::deque<std::list<Entry>::iterator>> per_peer_;  // each oldest first
  std::unordered_map<std::string, unsigned> running_;
  std::size_t bytes_ = 0;
};

// Request bodies that arrive block by block (RFC 7959 Block1), put together here so that their size is ours to
// bound: a peer has at most `per_peer` bodies in progress, all of them together hold at most `max_bytes`, and a
// body not finished within `lifetime` is dropped.
class Bodies {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    std::size_t per_peer = 2;
    std::size_t max_bytes = 64u << 20;
    std::chrono::seconds lifetime{60};
  };
  enum class Step {
    more,          // taken; send the next block
    complete,      // `body` holds the whole body
    too_large,     // over `max_body` (declared or sent): dropped
    out_of_order,  // not the next block of a body in progress: dropped
    busy,          // the peer or the server has too much in progress; retry later
  };

  Bodies() = default;
  explicit Bodies(Limits limits) : limits_(limits) {}

  // Adds the block at `offset` of the body `key` (of `peer`, and whatever tells its transfers apart); `more`: more
  // blocks follow; `declared`: the whole size when the client said it (Size1), else 0. A block sent again (the
  // last one taken) is taken again without effect.
  Step add(const std::string& peer, const std::string& key, std::size_t offset, std::string_view block, bool more,
           std::size_t declared, std::size_t max_body, Clock::time_point now, std::string& body);

  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return transfers_.size(); }

 private:
  struct Transfer {
    std::string peer;
    std::string data;
    std::size_t last_block = 0;  // the size of the last block taken
    Clock::time_point expires;
  };
  void drop(const std::string& key);

  Limits limits_;
  std::unordered_map<std::string, Transfer> transfers_;
  std::deque<std::pair<Clock::time_point, std::string>> by_expiry_;  // may name transfers dropped since
  std::unordered_map<std::string, std::size_t> per_peer_;
  std::size_t bytes_ = 0;
};

// The addresses that proved they receive what is sent to them, by echoing a challenge (RFC 9175, section 2.4):
// only they get answers much larger than their requests. A challenge is 8 random bytes, good for `lifetime`; a
// proof holds for `lifetime` too. At most `max_peers` addresses are remembered (the oldest go first).
class Addresses {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Addresses(std::chrono::seconds lifetime = std::chrono::seconds(600), std::size_t max_peers = 65536)
      : lifetime_(lifetime), max_peers_(max_peers) {}

  // True when `peer` proved itself within the lifetime, or `echoed` is its current challenge (then it has).
  bool verified(const std::string& peer, std::string_view echoed, Clock::time_point now);
  // A challenge for `peer` (the current one while it is fresh, so that requests crossing get the same).
  std::string challenge(const std::string& peer, Clock::time_point now);

  std::size_t size() const noexcept { return peers_.size(); }

 private:
  struct Peer {
    std::string challenge;
    Clock::time_point challenge_expires{};
    Clock::time_point verified_until{};
    std::list<std::string>::iterator age;
  };
  Peer& touch(const std::string& peer);

  std::chrono::seconds lifetime_;
  std::size_t max_peers_;
  std::unordered_map<std::string, Peer> peers_;
  std::list<std::string> ages_;  // least recently touched first
};

}  // namespace faas::coap
