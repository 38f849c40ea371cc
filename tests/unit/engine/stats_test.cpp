// The per-minute counts behind Engine::stats: percentiles within a bucket's width, a ring of sixty minutes.
#include <gtest/gtest.h>

#include "call_stats.hpp"

namespace faas {
namespace {

using std::chrono::minutes;
using std::chrono::system_clock;

TEST(CallStats, CountsAMinutesCallsErrorsAndPercentiles) {
  CallStats stats;
  auto now = std::chrono::floor<minutes>(system_clock::now()) + std::chrono::seconds(30);
  for (int ms = 1; ms <= 100; ++ms) stats.record("f", ms % 10 != 0, ms, now);
  auto snapshot = stats.snapshot(now);
  ASSERT_EQ(snapshot.functions.size(), 1u);
  const auto& f = snapshot.functions[0];
  ASSERT_EQ(f.minutes.size(), CallStats::window);
  const auto& last = f.minutes.back();
  EXPECT_EQ(last.minute, snapshot.minute);
  EXPECT_EQ(last.calls, 100u);
  EXPECT_EQ(last.errors, 10u);
  // A bucket is 25% wide: its middle is within ~12% of any duration in it.
  EXPECT_NEAR(last.p50_ms, 50, 50 * 0.15);
  EXPECT_NEAR(last.p95_ms, 95, 95 * 0.15);
  EXPECT_NEAR(last.p99_ms, 99, 99 * 0.15);
  EXPECT_EQ(f.hour.calls, 100u);
  EXPECT_EQ(f.successes, 90u);
  EXPECT_EQ(f.errors, 10u);
  std::uint64_t in_histogram = 0;
  for (auto count : f.histogram) in_histogram += count;
  EXPECT_EQ(in_histogram, 100u);
}

TEST(CallStats, KeepsTheLastSixtyMinutesOnly) {
  CallStats stats;
  auto now = std::chrono::floor<minutes>(system_clock::now());
  stats.record("f", true, 1, now - minutes(61));  // its slot is the one of a minute ago: taken over below
  stats.record("f", true, 1, now - minutes(1));
  stats.record("f", true, 1, now - minutes(59));
  auto f = stats.snapshot(now).functions.at(0);
  EXPECT_EQ(f.hour.calls, 2u);
  EXPECT_EQ(f.minutes[CallStats::window - 2].calls, 1u);
  EXPECT_EQ(f.minutes[0].calls, 1u);
  EXPECT_EQ(f.successes, 3u) << "totals since start keep everything";
  stats.forget("f");
  EXPECT_TRUE(stats.snapshot(now).functions.empty());
}

TEST(CallStats, BucketsCoverTenMicrosecondsToMinutes) {
  EXPECT_EQ(CallStats::fine_bucket(0), 0u);
  EXPECT_EQ(CallStats::fine_bucket(-1), 0u);
  EXPECT_EQ(CallStats::fine_bucket(1e9), CallStats::fine_buckets - 1);
  EXPECT_EQ(CallStats::fine_bucket(1e300), CallStats::fine_buckets - 1);
  for (double ms : {0.02, 0.5, 3.0, 250.0, 30000.0}) {
    auto middle = CallStats::fine_bucket_ms(CallStats::fine_bucket(ms));
    EXPECT_NEAR(middle, ms, ms * 0.15) << ms;
  }
}

}  // namespace
}  // namespace faas
