// faas-coap's bounded memories: answers kept for retransmissions, bodies put together from blocks, proved addresses.
#include <gtest/gtest.h>

#include "exchanges.hpp"

namespace {

using namespace faas::coap;
using Clock = std::chrono::steady_clock;

TEST(Exchanges, KeepsAnAnswerPerPeerAndMessageIdForItsLifetime) {
  Exchanges exchanges;
  auto now = Clock::now();
  exchanges.remember("udp 10.0.0.1:5000", 7, Answer{205, "{\"result\":1}", -1}, now);
  ASSERT_NE(exchanges.find("udp 10.0.0.1:5000", 7, now), nullptr);
  EXPECT_EQ(exchanges.find("udp 10.0.0.1:5000", 7, now)->body, "{\"result\":1}");
  EXPECT_EQ(exchanges.find("udp 10.0.0.1:5000", 8, now), nullptr);   // another message
  EXPECT_EQ(exchanges.find("udp 10.0.0.2:5000", 7, now), nullptr);   // another peer
  EXPECT_EQ(exchanges.find("udp 10.0.0.1:5000", 7, now + std::chrono::seconds(248)), nullptr);  // expired
  EXPECT_EQ(exchanges.size(), 0u);
}

TEST(Exchanges, BoundsEachPeerAndAllOfThem) {
  Exchanges::Limits limits;
  limits.per_peer = 3;
  limits.total = 10;
  limits.max_bytes = 1000;
  Exchanges exchanges(limits);
  auto now = Clock::now();
  for (std::uint16_t id = 0; id < 5; ++id) exchanges.remember("a", id, Answer{205, "x", -1}, now);
  EXPECT_EQ(exchanges.size(), 3u);
  EXPECT_EQ(exchanges.find("a", 0, now), nullptr);  // its oldest went first
  EXPECT_NE(exchanges.find("a", 4, now), nullptr);
  for (int peer = 0; peer < 20; ++peer) exchanges.remember("p" + std::to_string(peer), 1, Answer{205, "x", -1}, now);
  EXPECT_EQ(exchanges.size(), 10u);
  exchanges.remember("big", 1, Answer{205, std::string(900, 'y'), -1}, now);
  EXPECT_LE(exchanges.bytes(), 1000u);
  EXPECT_NE(exchanges.find("big", 1, now), nullptr);
  exchanges.remember("huge", 1, Answer{205, std::string(5000, 'y'), -1}, now);  // larger than all: not kept
  EXPECT_EQ(exchanges.find("huge", 1, now), nullptr);
}

TEST(Exchanges, CountsCallsRunningPerPeer) {
  Exchanges::Limits limits;
  limits.running_per_peer = 2;
  Exchanges exchanges(limits);
  EXPECT_TRUE(exchanges.start_call("a"));
  EXPECT_TRUE(exchanges.start_call("a"));
  EXPECT_FALSE(exchanges.start_call("a"));
  EXPECT_TRUE(exchanges.start_call("b"));
  exchanges.end_call("a");
  EXPECT_TRUE(exchanges.start_call("a"));
}

TEST(Bodies, PutsBlocksTogetherInOrder) {
  Bodies bodies;
  auto now = Clock::now();
  std::string body;
  EXPECT_EQ(bodies.add("p", "k", 0, "abcd", true, 0, 100, now, body), Bodies::Step::more);
  EXPECT_EQ(bodies.add("p", "k", 0, "abcd", true, 0, 100, now, body), Bodies::Step::more);  // sent again
  EXPECT_EQ(bodies.add("p", "k", 4, "efgh", true, 0, 100, now, body), Bodies::Step::more);
  EXPECT_EQ(bodies.add("p", "k", 4, "efgh", true, 0, 100, now, body), Bodies::Step::more);  // sent again
  EXPECT_EQ(bodies.add("p", "k", 8, "ij", false, 0, 100, now, body), Bodies::Step::complete);
  EXPECT_EQ(body, "abcdefghij");
  EXPECT_EQ(bodies.size(), 0u);
  EXPECT_EQ(bodies.bytes(), 0u);
  EXPECT_EQ(bodies.add("p", "one", 0, "{}", false, 0, 100, now, body), Bodies::Step::complete);  // one block
  EXPECT_EQ(body, "{}");
}

TEST(Bodies, RefusesWhatIsTooLargeMissingOrTooMuch) {
  Bodies::Limits limits;
  limits.per_peer = 1;
  limits.max_bytes = 10;
  Bodies bodies(limits);
  auto now = Clock::now();
  std::string body;
  EXPECT_EQ(bodies.add("p", "k", 0, "ab", true, 1000, 100, now, body), Bodies::Step::too_large);  // declared
  EXPECT_EQ(bodies.add("p", "k", 4, "ab", true, 0, 100, now, body), Bodies::Step::out_of_order);  // never begun
  EXPECT_EQ(bodies.add("p", "k", 0, "ab", true, 0, 5, now, body), Bodies::Step::more);
  EXPECT_EQ(bodies.add("p", "k", 2, "abcd", true, 0, 5, now, body), Bodies::Step::too_large);     // sent
  EXPECT_EQ(bodies.size(), 0u);
  EXPECT_EQ(bodies.add("p", "k", 0, "ab", true, 0, 100, now, body), Bodies::Step::more);
  EXPECT_EQ(bodies.add("p", "k", 6, "ab", true, 0, 100, now, body), Bodies::Step::out_of_order);  // a gap
  EXPECT_EQ(bodies.add("p", "k", 0, "ab", true, 0, 100, now, body), Bodies::Step::more);
  EXPECT_EQ(bodies.add("p", "k2", 0, "ab", true, 0, 100, now, body), Bodies::Step::busy);  // one per peer
  EXPECT_EQ(bodies.add("q", "q", 0, "abcdefgh", true, 0, 100, now, body), Bodies::Step::more);
  EXPECT_EQ(bodies.add("q", "q", 8, "ab", true, 0, 100, now, body), Bodies::Step::busy);  // 10 bytes in all
  EXPECT_LE(bodies.bytes(), 10u);
  // An abandoned body is let go after its lifetime.
  EXPECT_EQ(bodies.add("p", "k2", 0, "ab", true, 0, 100, now + std::chrono::seconds(61), body), Bodies::Step::more);
  EXPECT_EQ(bodies.size(), 1u);
}

TEST(Addresses, ProvedOnlyByEchoingTheirOwnChallenge) {
  Addresses addresses(std::chrono::seconds(60), 2);
  auto now = Clock::now();
  EXPECT_FALSE(addresses.verified("a", "", now));
  auto challenge = addresses.challenge("a", now);
  EXPECT_EQ(challenge.size(), 8u);
  EXPECT_EQ(addresses.challenge("a", now), challenge);  // the same while fresh
  auto other = addresses.challenge("b", now);
  EXPECT_FALSE(addresses.verified("a", other, now));    // another's challenge
  EXPECT_FALSE(addresses.verified("a", "12345678", now));
  EXPECT_TRUE(addresses.verified("a", challenge, now));
  EXPECT_TRUE(addresses.verified("a", "", now + std::chrono::seconds(30)));  // proved for a while
  EXPECT_FALSE(addresses.verified("a", "", now + std::chrono::seconds(61)));
  addresses.challenge("c", now);  // a third peer: the least recently touched is forgotten
  EXPECT_EQ(addresses.size(), 2u);
}

}  // namespace
