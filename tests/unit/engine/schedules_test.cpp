// Schedules: cron expressions, and the engine firing a function's schedule at the minutes it names, once.
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include <nlohmann/json.hpp>

#include "faas/engine.hpp"
#include "test_support.hpp"
#include "util/cron.hpp"

namespace faas {
namespace {

using nlohmann::json;
using testing::TempDir;
using Clock = std::chrono::system_clock;

// A local time as the machine's clock would read it.
Clock::time_point local_time(int year, int month, int day, int hour, int minute) {
  std::tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_isdst = -1;
  return Clock::from_time_t(std::mktime(&parts));
}

std::tm broken_down(Clock::time_point t) {
  std::time_t seconds = Clock::to_time_t(t);
  std::tm out{};
  ::localtime_r(&seconds, &out);
  return out;
}

bool fires(const char* expression, int year, int month, int day, int hour, int minute) {
  return CronSchedule::parse(expression).matches(broken_down(local_time(year, month, day, hour, minute)));
}

TEST(Cron, FieldsListsRangesStepsNamesAndShorthands) {
  EXPECT_TRUE(fires("* * * * *", 2026, 11, 29, 13, 7));
  EXPECT_TRUE(fires("*/15 * * * *", 2026, 11, 29, 13, 45));
  EXPECT_FALSE(fires("*/15 * * * *", 2026, 11, 29, 13, 46));
  EXPECT_TRUE(fires("5,10-12 9-17/2 * * *", 2026, 11, 29, 11, 11));
  EXPECT_FALSE(fires("5,10-12 9-17/2 * * *", 2026, 11, 29, 10, 11));
  EXPECT_TRUE(fires("30 4 1 jan *", 2027, 1, 1, 4, 30));
  EXPECT_TRUE(fires("0 9 * * mon-fri", 2026, 11, 30, 9, 0));   // a Monday
  EXPECT_FALSE(fires("0 9 * * MON-FRI", 2026, 11, 29, 9, 0));  // a Sunday
  EXPECT_TRUE(fires("0 9 * * 7", 2026, 11, 29, 9, 0));         // 7 is Sunday too
  EXPECT_TRUE(fires("0 0 13 * fri", 2026, 11, 13, 0, 0));      // both day fields: either one
  EXPECT_TRUE(fires("0 0 13 * fri", 2026, 11, 20, 0, 0));
  EXPECT_FALSE(fires("0 0 13 * fri", 2026, 11, 21, 0, 0));
  EXPECT_TRUE(fires("@daily", 2026, 11, 29, 0, 0));
  EXPECT_FALSE(fires("@hourly", 2026, 11, 29, 5, 1));
  EXPECT_TRUE(fires("5/20 * * * *", 2026, 11, 29, 5, 45));  // N/step runs from N to the end
}

TEST(Cron, RefusesWhatCronWouldNot) {
  for (const char* bad : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                          "* * * * 8", "*/0 * * * *", "5-1 * * * *", "1,,2 * * * *", "a * * * *", "* * * foo *",
                          "1- * * * *", "@sometimes", "*/61 * * * *", "-1 * * * *"}) {
    SCOPED_TRACE(bad);
    try {
      CronSchedule::parse(bad);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    }
  }
  EXPECT_THROW(CronSchedule::parse(std::string(300, '*')), Error);
}

class SchedulesTest : public ::testing::Test {
 protected:
  TempDir dir;
  EngineConfig config() const {
    auto out = testing::test_config(dir.path());
    out.schedules = false;  // the tests drive the clock
    return out;
  }
};

std::vector<json> records(Engine& engine, const std::string& name, std::size_t at_least) {
  for (int i = 0; i < 500; ++i) {
    auto texts = engine.logs(name, 0);
    if (texts.size() >= at_least) {
      std::vector<json> out;
      for (const auto& text : texts) out.push_back(json::parse(text));
      return out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "fewer than " << at_least << " records of " << name;
  return {};
}

TEST_F(SchedulesTest, AScheduleFiresAtTheMinutesItNamesWithItsArguments) {
  Engine engine(config());
  engine.upload("tick", "def main(label, n=0):\n    return [label, n]\n");
  engine.update_settings("tick", json::parse(R"({"schedule": [
      {"cron": "*/5 * * * *", "args": ["five"]},
      {"cron": "0 12 * * *", "args": ["noon"], "kwargs": {"n": 12}}]})"));
  EXPECT_EQ(engine.settings("tick").schedule.size(), 2u);
  EXPECT_TRUE(engine.run_schedules(local_time(2026, 11, 29, 11, 58)).empty());
  EXPECT_EQ(engine.run_schedules(local_time(2026, 11, 29, 11, 55) + std::chrono::seconds(42)).size(), 1u);
  EXPECT_EQ(engine.run_schedules(local_time(2026, 11, 29, 12, 0)).size(), 2u);
  EXPECT_EQ(engine.status().scheduled, 3u) << "counted for /metrics (faas_schedule_runs_total)";
  auto fired = records(engine, "tick", 3);
  ASSERT_EQ(fired.size(), 3u);
  for (const auto& record : fired) {
    EXPECT_EQ(record["trigger"], "schedule");
    EXPECT_EQ(record["status"], "success");
  }
  std::multiset<std::string> results;
  for (const auto& record : fired) results.insert(record["result"].dump());
  EXPECT_EQ(results, (std::multiset<std::string>{R"(["five",0])", R"(["five",0])", R"(["noon",12])"}));
  // A tick fires once, however often it is asked.
  EXPECT_TRUE(engine.run_schedules(local_time(2026, 11, 29, 12, 0)).empty());
  // Without a schedule, nothing fires.
  engine.update_settings("tick", json::parse(R"({"schedule": null})"));
  EXPECT_TRUE(engine.run_schedules(local_time(2026, 11, 29, 12, 5)).empty());
}

TEST_F(SchedulesTest, EnginesSharingADataDirFireEachTickOnce) {
  Engine first(config());
  Engine second(config());
  first.upload("tick", "def main():\n    return 1\n", std::nullopt, json::parse(R"({"schedule": ["* * * * *"]})"));
  // The second engine learns of it through its registry poll: then each would fire every minute on its own.
  auto known = [&] {
    try {
      second.invoke("tick", json::array());
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  for (int i = 0; i < 200 && !known(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(second.run_schedules(local_time(2026, 11, 29, 9, 31)).size(), 1u);  // it knows the schedule
  auto minute = local_time(2026, 11, 29, 9, 30);
  EXPECT_EQ(first.run_schedules(minute).size(), 1u);
  EXPECT_TRUE(second.run_schedules(minute).empty()) << "the first engine had claimed that tick";
}

TEST_F(SchedulesTest, BadSchedulesAreRefused) {
  Engine engine(config());
  engine.upload("f", "def main():\n    return 1\n");
  for (const char* bad : {R"({"schedule": "* * * * *"})", R"({"schedule": [{"args": []}]})",
                          R"({"schedule": [{"cron": "61 * * * *"}]})", R"({"schedule": [{"cron": "* * * * *", "args": 1}]})",
                          R"({"schedule": [{"cron": "* * * * *", "when": 1}]})", R"({"schedule": [7]})"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(engine.update_settings("f", json::parse(bad)), Error);
  }
  json many = json::array();
  for (int i = 0; i < 17; ++i) many.push_back("* * * * *");
  EXPECT_THROW(engine.update_settings("f", json{{"schedule", many}}), Error);
  EXPECT_TRUE(engine.settings("f").schedule.empty());
}

}  // namespace
}  // namespace faas
