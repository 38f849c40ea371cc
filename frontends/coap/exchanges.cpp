// exchanges.cpp — the bounded answer cache and per-peer call counts of exchanges.hpp.
#include "exchanges.hpp"

#include <algorithm>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace faas::coap {

std::string Exchanges::key_of(const std::string& peer, std::uint16_t message_id) {
  std::string key = peer;
  key.push_back('#');
  key.append(std::to_string(message_id));
  return key;
}

void Exchanges::erase(std::list<Entry>::iterator it) {
  bytes_ -= it->answer.body.size() + it->key.size();
  if (auto peer = per_peer_.find(it->peer); peer != per_peer_.end()) {
    auto& mine = peer->second;
    mine.erase(std::find(mine.begin(), mine.end(), it));  // nearly always its first: entries go oldest first
    if (mine.empty()) per_peer_.erase(peer);
  }
  by_key_.erase(it->key);
  entries_.erase(it);
}

void Exchanges::expire(Clock::time_point now) {
  while (!entries_.empty() && entries_.front().expires <= now) erase(entries_.begin());
}

const Answer* Exchanges::find(const std::string& peer, std::uint16_t message_id, Clock::time_point now) {
  expire(now);
  auto it = by_key_.find(key_of(peer, message_id));
  return it == by_key_.end() ? nullptr : &it->second->answer;
}

void Exchanges::remember(const std::string& peer, std::uint16_t message_id, Answer answer, Clock::time_point now) {
  expire(now);
  auto key = key_of(peer, message_id);
  if (auto old = by_key_.find(key); old != by_key_.end()) erase(old->second);  // a message id used anew
  const std::size_t size = answer.body.size() + key.size();
  if (size > limits_.max_bytes) return;
  if (auto mine = per_peer_.find(peer); mine != per_peer_.end() && mine->second.size() >= limits_.per_peer) {
    erase(mine->second.front());
  }
  while (!entries_.empty() && (entries_.size() >= limits_.total || bytes_ + size > limits_.max_bytes)) {
    erase(entries_.begin());
  }
  entries_.push_back(Entry{key, peer, std::move(answer), now + limits_.lifetime});
  by_key_[key] = std::prev(entries_.end());
  per_peer_[peer].push_back(std::prev(entries_.end()));
  bytes_ += size;
}

bool Exchanges::start_call(const std::string& peer) {
  auto& running = running_[peer];
  if (running >= limits_.running_per_peer) return false;
  ++running;
  return true;
}

void Exchanges::end_call(const std::string& peer) {
  auto it = running_.find(peer);
  if (it != running_.end() && --it->second == 0) running_.erase(it);
}

void Bodies::drop(const std::string& key) {
  auto it = transfers_.find(key);
  if (it == transfers_.end()) return;
  bytes_ -= it->second.data.size();
  if (auto peer = per_peer_.find(it->second.peer); peer != per_peer_.end() && --peer->second == 0) {
    per_peer_.erase(peer);
  }
  transfers_.erase(it);
}

Bodies::Step Bodies::add(const std::string& peer, const std::string& key, std::size_t offset, std::string_view block,
                         bool more, std::size_t declared, std::size_t max_body, Clock::time_point now,
                         std::string& body) {
  while (!by_expiry_.empty() && by_expiry_.front().first <= now) {
    auto it = transfers_.find(by_expiry_.front().second);
    if (it != transfers_.end() && it->second.expires <= now) drop(it->first);
    by_expiry_.pop_front();
  }
  auto it = transfers_.find(key);
  if (offset == 0) {
    if (it != transfers_.end() && it->second.data.size() == block.size() && more) return Step::more;  // again
    drop(key);
    if (declared > max_body || block.size() > max_body) return Step::too_large;
    if (!more) {
      body.assign(block);
      return Step::complete;
    }
    if (per_peer_[peer] >= limits_.per_peer || bytes_ + block.size() > limits_.max_bytes) {
      if (per_peer_[peer] == 0) per_peer_.erase(peer);
      return Step::busy;
    }
    ++per_peer_[peer];
    it = transfers_.emplace(key, Transfer{peer, {}, 0, now + limits_.lifetime}).first;
    by_expiry_.emplace_back(it->second.expires, key);
  } else if (it == transfers_.end()) {
    return Step::out_of_order;
  } else if (offset + block.size() == it->second.data.size() && block.size() == it->second.last_block) {
    return Step::more;  // the last block again (its answer was lost)
  } else if (offset != it->second.data.size()) {
    drop(key);
    return Step::out_of_order;
  }
  Transfer& transfer = it->second;
  if (transfer.data.size() + block.size() > max_body) {
    drop(key);
    return Step::too_large;
  }
  if (bytes_ + block.size() > limits_.max_bytes) {
    drop(key);
    return Step::busy;
  }
  transfer.data.append(block);
  transfer.last_block = block.size();
  bytes_ += block.size();
  if (more) return Step::more;
  body = std::move(transfer.data);
  bytes_ -= body.size();
  transfer.data.clear();
  drop(key);
  return Step::complete;
}

Addresses::Peer& Addresses::touch(const std::string& peer) {
  auto [it, added] = peers_.try_emplace(peer);
  if (!added) {
    ages_.splice(ages_.end(), ages_, it->second.age);
    return it->second;
  }
  ages_.push_back(peer);
  it->second.age = std::prev(ages_.end());
  if (peers_.size() > max_peers_) {
    peers_.erase(ages_.front());
    ages_.pop_front();
  }
  return it->second;
}

bool Addresses::verified(const std::string& peer, std::string_view echoed, Clock::time_point now) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return false;
  Peer& known = it->second;
  if (known.verified_until > now) return true;
  if (echoed.empty() || known.challenge_expires <= now || echoed.size() != known.challenge.size() ||
      CRYPTO_memcmp(echoed.data(), known.challenge.data(), echoed.size()) != 0) {
    return false;
  }
  touch(peer).verified_until = now + lifetime_;
  return true;
}

std::string Addresses::challenge(const std::string& peer, Clock::time_point now) {
  Peer& known = touch(peer);
  if (known.challenge_expires <= now) {
    known.challenge.assign(8, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(known.challenge.data()), 8) != 1) {
      throw std::runtime_error("no random bytes for a challenge");
    }
    known.challenge_expires = now + lifetime_;
  }
  return known.challenge;
}

}  // namespace faas::coap
