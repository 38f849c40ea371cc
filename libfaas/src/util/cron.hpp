// Cron expressions, as crontab(5) writes them: "minute hour day-of-month month day-of-week", each field a
// comma-separated list of `*`, `N` or `N-M`, optionally `/step`; months and weekdays also by their English
// three-letter names; 0 and 7 are Sunday; and the shorthands @hourly, @daily (@midnight), @weekly, @monthly,
// @yearly (@annually). As in cron, when both day fields are restricted a day matching either one matches.
#pragma once

#include <bitset>
#include <ctime>
#include <string>
#include <string_view>

namespace faas {

class CronSchedule {
 public:
  // Throws Error(invalid_input) saying which field is wrong and why.
  static CronSchedule parse(std::string_view expression);

  // Whether the schedule fires in the minute `local` (a broken-down local time; seconds are ignored).
  bool matches(const std::tm& local) const;

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;      // 1..31
  std::bitset<13> months_;    // 1..12
  std::bitset<8> weekdays_;   // 0..6, Sunday 0 (7 is folded into 0)
  bool any_day_ = true;       // the day-of-month field is `*`
  bool any_weekday_ = true;   // the day-of-week field is `*`
};

}  // namespace faas
