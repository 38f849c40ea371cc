#include "util/cron.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <vector>

#include "faas/error.hpp"

namespace faas {

namespace {

constexpr std::size_t max_expression = 256;

struct Field {
  const char* name;
  int low;
  int high;
  const char* const* names;  // names[i] is the value low + i, or null
};

constexpr const char* month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* weekday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr std::array<Field, 5> fields{{{"minute", 0, 59, nullptr},
                                       {"hour", 0, 23, nullptr},
                                       {"day of month", 1, 31, nullptr},
                                       {"month", 1, 12, month_names},
                                       {"day of week", 0, 7, weekday_names}}};

[[noreturn]] void refuse(const Field& field, std::string_view text, const std::string& why) {
  throw Error(ErrorCode::invalid_input,
              std::string("cron ") + field.name + " field '" + std::string(text.substr(0, 32)) + "': " + why);
}

int value_of(const Field& field, std::string_view whole, std::string_view text) {
  if (text.empty()) refuse(field, whole, "a value is missing");
  if (field.names != nullptr && std::isalpha(static_cast<unsigned char>(text[0]))) {
    int count = field.high == 7 ? 7 : 12;
    for (int i = 0; i < count; ++i) {
      std::string_view name = field.names[i];
      if (text.size() == 3 && std::equal(text.begin(), text.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == b;
          })) {
        return field.low + i;
      }
    }
    refuse(field, whole, "unknown name '" + std::string(text.substr(0, 16)) + "'");
  }
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) refuse(field, whole, "not a number");
  if (value < field.low || value > field.high) {
    refuse(field, whole, "out of range " + std::to_string(field.low) + "-" + std::to_string(field.high));
  }
  return value;
}

// The values of one field, and whether it was `*`.
std::vector<bool> parse_field(const Field& field, std::string_view text, bool& any) {
  std::vector<bool> on(static_cast<std::size_t>(field.high) + 1, false);
  any = text == "*";
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) refuse(field, text, "an empty list item");
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      auto step_text = item.substr(slash + 1);
      auto [end, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (ec != std::errc() || end != step_text.data() + step_text.size() || step < 1 || step > field.high + 1) {
        refuse(field, text, "a step must be a number from 1 to " + std::to_string(field.high + 1));
      }
      item = item.substr(0, slash);
    }
    int low = field.low, high = field.high;
    if (item != "*") {
      auto dash = item.find('-');
      low = value_of(field, text, item.substr(0, dash));
      // "N/step" runs from N to the end, as in cron; a lone N is just N.
      high = dash != std::string_view::npos ? value_of(field, text, item.substr(dash + 1)) : step > 1 ? field.high : low;
      if (high < low) refuse(field, text, "a range must not run backwards");
    }
    for (int value = low; value <= high; value += step) on[static_cast<std::size_t>(value)] = true;
  }
  return on;
}

std::string_view expand_shorthand(std::string_view expression) {
  struct Shorthand {
    std::string_view name, expansion;
  };
  static constexpr Shorthand shorthands[] = {{"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},
                                             {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
                                             {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
                                             {"@annually", "0 0 1 1 *"}};
  for (const auto& shorthand : shorthands) {
    if (expression == shorthand.name) return shorthand.expansion;
  }
  if (!expression.empty() && expression[0] == '@') {
    throw Error(ErrorCode::invalid_input, "unknown cron shorthand '" + std::string(expression.substr(0, 32)) +
                                              "' (@hourly, @daily, @weekly, @monthly, @yearly)");
  }
  return expression;
}

}  // namespace

CronSchedule CronSchedule::parse(std::string_view expression) {
  if (expression.size() > max_expression) throw Error(ErrorCode::invalid_input, "a cron expression is too long");
  expression = expand_shorthand(expression);
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < expression.size()) {
    while (i < expression.size() && (expression[i] == ' ' || expression[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < expression.size() && expression[i] != ' ' && expression[i] != '\t') ++i;
    if (i > start) parts.push_back(expression.substr(start, i - start));
  }
  if (parts.size() != fields.size()) {
    throw Error(ErrorCode::invalid_input, "a cron expression has 5 fields (minute hour day-of-month month "
                                          "day-of-week), not " + std::to_string(parts.size()));
  }
  CronSchedule schedule;
  bool any = false;
  auto minutes = parse_field(fields[0], parts[0], any);
  auto hours = parse_field(fields[1], parts[1], any);
  auto days = parse_field(fields[2], parts[2], schedule.any_day_);
  auto months = parse_field(fields[3], parts[3], any);
  auto weekdays = parse_field(fields[4], parts[4], schedule.any_weekday_);
  for (std::size_t v = 0; v < minutes.size(); ++v) schedule.minutes_[v] = minutes[v];
  for (std::size_t v = 0; v < hours.size(); ++v) schedule.hours_[v] = hours[v];
  for (std::size_t v = 0; v < days.size(); ++v) schedule.days_[v] = days[v];
  for (std::size_t v = 0; v < months.size(); ++v) schedule.months_[v] = months[v];
  for (std::size_t v = 0; v < weekdays.size(); ++v) schedule.weekdays_[v % 7] = schedule.weekdays_[v % 7] || weekdays[v];
  return schedule;
}

bool CronSchedule::matches(const std::tm& local) const {
  if (local.tm_min < 0 || local.tm_min > 59 || local.tm_hour < 0 || local.tm_hour > 23 || local.tm_mday < 1 ||
      local.tm_mday > 31 || local.tm_mon < 0 || local.tm_mon > 11 || local.tm_wday < 0 || local.tm_wday > 6) {
    return false;
  }
  if (!minutes_[static_cast<std::size_t>(local.tm_min)] || !hours_[static_cast<std::size_t>(local.tm_hour)] ||
      !months_[static_cast<std::size_t>(local.tm_mon + 1)]) {
    return false;
  }
  bool day = days_[static_cast<std::size_t>(local.tm_mday)];
  bool weekday = weekdays_[static_cast<std::size_t>(local.tm_wday)];
  if (any_day_ && any_weekday_) return true;
  if (any_day_) return weekday;
  if (any_weekday_) return day;
  return day || weekday;
}

}  // namespace faas
