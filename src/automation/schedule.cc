#include "automation/schedule.h"

#include <charconv>
#include <date/tz.h>
#include <vector>

namespace fulcrum::automation {

namespace {

constexpr int kSearchDays = 5 * 366;  // Feb 29 on a given weekday recurs within 28 years;
                                      // five years is the bound we accept for a schedule

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return parts;
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  if (text.empty() || text.size() > 4) return std::nullopt;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// One cron field into `bits` (index = value); false when malformed or out of [low, high].
template <std::size_t N>
bool parse_field(std::string_view field, int low, int high, std::bitset<N>& bits) {
  if (field.empty()) return false;
  for (std::string_view item : split(field, ',')) {
    int step = 1;
    const std::size_t slash = item.find('/');
    if (slash != std::string_view::npos) {
      auto parsed = parse_int(item.substr(slash + 1));
      if (!parsed || *parsed < 1) return false;
      step = *parsed;
      item = item.substr(0, slash);
    }
    int from = low, to = high;
    if (item != "*") {
      const std::size_t dash = item.find('-');
      auto first = parse_int(item.substr(0, dash));
      if (!first) return false;
      from = to = *first;
      if (dash != std::string_view::npos) {
        auto last = parse_int(item.substr(dash + 1));
        if (!last) return false;
        to = *last;
      } else if (slash != std::string_view::npos) {
        to = high;  // "5/15" = 5-59/15
      }
    }
    if (from < low || to > high || from > to) return false;
    for (int value = from; value <= to; value += step) bits.set(static_cast<std::size_t>(value));
  }
  return true;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

}  // namespace

Result<TimeZone> TimeZone::parse(std::string_view name, std::string field) {
  TimeZone zone;
  zone.name_ = std::string(name);
  if (name == "UTC" || name == "Z" || name == "Etc/UTC") {
    zone.name_ = "UTC";
    return zone;
  }
  if (!name.empty() && (name[0] == '+' || name[0] == '-')) {
    // Fixed offset: +HH:MM.
    if (name.size() != 6 || name[3] != ':') {
      return invalid_argument("time zone offset must look like +02:00", field);
    }
    auto hours = parse_int(name.substr(1, 2));
    auto minutes = parse_int(name.substr(4, 2));
    if (!hours || !minutes || *hours > 14 || *minutes > 59) {
      return invalid_argument("time zone offset out of range", field);
    }
    zone.offset_seconds_ = (*hours * 3600 + *minutes * 60) * (name[0] == '-' ? -1 : 1);
    return zone;
  }
  if (name.empty() || name.size() > 64) return invalid_argument("unknown time zone", field);
  try {
    zone.zone_ = date::locate_zone(std::string(name));
  } catch (const std::exception&) {
    return invalid_argument("unknown time zone '" + std::string(name) + "'", field);
  }
  return zone;
}

std::int64_t TimeZone::to_local(UnixSeconds t) const {
  if (!zone_) return t + offset_seconds_;
  const date::sys_seconds sys{std::chrono::seconds(t)};
  return zone_->to_local(sys).time_since_epoch().count();
}

UnixSeconds TimeZone::to_utc(std::int64_t local) const {
  if (!zone_) return local - offset_seconds_;
  const date::local_seconds wall{std::chrono::seconds(local)};
  const date::local_info info = zone_->get_info(wall);
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::ambiguous:  // first occurrence: the earlier offset
      return local - info.first.offset.count();
    case date::local_info::nonexistent:
    default:
      return info.second.begin.time_since_epoch().count();  // the end of the gap
  }
}

Result<Schedule> Schedule::parse(std::string_view text, TimeZone zone, std::string field) {
  Schedule schedule(std::move(zone));
  schedule.text_ = std::string(text);
  if (text.size() > 128) return invalid_argument("schedule is too long", field);
  std::string expression(text);
  if (text == "@hourly") expression = "0 * * * *";
  if (text == "@daily" || text == "@midnight") expression = "0 0 * * *";
  if (text == "@weekly") expression = "0 0 * * 0";
  if (text == "@monthly") expression = "0 0 1 * *";
  if (text.rfind("every ", 0) == 0) {
    std::string_view amount = text.substr(6);
    if (amount.size() < 2) return invalid_argument("interval must look like 'every 15m'", field);
    const char unit = amount.back();
    auto count = parse_int(amount.substr(0, amount.size() - 1));
    const std::int64_t unit_seconds = unit == 's'   ? 1
                                      : unit == 'm' ? 60
                                      : unit == 'h' ? 3600
                                      : unit == 'd' ? kSecondsPerDay
                                                    : 0;
    if (!count || *count < 1 || unit_seconds == 0) {
      return invalid_argument("interval must look like 'every 15m' (units s, m, h, d)", field);
    }
    schedule.interval_seconds_ = *count * unit_seconds;
    if (schedule.interval_seconds_ < 10 || schedule.interval_seconds_ > 366 * kSecondsPerDay) {
      return invalid_argument("interval must be between 10 seconds and 366 days", field);
    }
    return schedule;
  }
  std::vector<std::string_view> fields;
  for (std::string_view part : split(expression, ' ')) {
    if (!part.empty()) fields.push_back(part);
  }
  if (fields.size() != 5) {
    return invalid_argument(
        "schedule must be a 5-field cron expression (minute hour day-of-month month "
        "day-of-week), a macro (@hourly, @daily, @weekly, @monthly) or 'every N[smhd]'",
        field);
  }
  std::bitset<8> dow;
  if (!parse_field(fields[0], 0, 59, schedule.minutes_) ||
      !parse_field(fields[1], 0, 23, schedule.hours_) ||
      !parse_field(fields[2], 1, 31, schedule.days_of_month_) ||
      !parse_field(fields[3], 1, 12, schedule.months_) || !parse_field(fields[4], 0, 7, dow)) {
    return invalid_argument("invalid cron field in '" + std::string(text) + "'", field);
  }
  for (std::size_t d = 0; d < 7; ++d) schedule.days_of_week_[d] = dow[d];
  if (dow[7]) schedule.days_of_week_.set(0);
  schedule.dom_restricted_ = fields[2] != "*";
  schedule.dow_restricted_ = fields[4] != "*";
  return schedule;
}

bool Schedule::day_matches(std::int64_t local_day) const {
  const date::sys_days day{date::days(local_day)};
  const date::year_month_day ymd{day};
  if (!months_[static_cast<unsigned>(ymd.month())]) return false;
  const bool dom = days_of_month_[static_cast<unsigned>(ymd.day())];
  const bool dow = days_of_week_[date::weekday(day).c_encoding()];
  if (dom_restricted_ && dow_restricted_) return dom || dow;
  return dom && dow;
}

std::optional<UnixSeconds> Schedule::last_fire_at_or_before(UnixSeconds t) const {
  if (interval_seconds_ > 0) return floor_div(t, interval_seconds_) * interval_seconds_;
  const std::int64_t local_now = zone_.to_local(t);
  const std::int64_t today = floor_div(local_now, kSecondsPerDay);
  // A candidate's instant can exceed t only near a DST transition, so scan a day beyond.
  for (std::int64_t day = today + 1; day > today - kSearchDays; --day) {
    if (!day_matches(day)) continue;
    for (int hour = 23; hour >= 0; --hour) {
      if (!hours_[static_cast<std::size_t>(hour)]) continue;
      for (int minute = 59; minute >= 0; --minute) {
        if (!minutes_[static_cast<std::size_t>(minute)]) continue;
        const std::int64_t local = day * kSecondsPerDay + hour * 3600 + minute * 60;
        if (local > local_now + 3 * 3600) continue;
        const UnixSeconds instant = zone_.to_utc(local);
        if (instant <= t) return instant;
      }
    }
  }
  return std::nullopt;
}

std::optional<UnixSeconds> Schedule::next_fire_after(UnixSeconds t) const {
  if (interval_seconds_ > 0) return (floor_div(t, interval_seconds_) + 1) * interval_seconds_;
  const std::int64_t local_now = zone_.to_local(t);
  const std::int64_t today = floor_div(local_now, kSecondsPerDay);
  for (std::int64_t day = today - 1; day < today + kSearchDays; ++day) {
    if (!day_matches(day)) continue;
    for (int hour = 0; hour < 24; ++hour) {
      if (!hours_[static_cast<std::size_t>(hour)]) continue;
      for (int minute = 0; minute < 60; ++minute) {
        if (!minutes_[static_cast<std::size_t>(minute)]) continue;
        const std::int64_t local = day * kSecondsPerDay + hour * 3600 + minute * 60;
        if (local < local_now - 3 * 3600) continue;
        const UnixSeconds instant = zone_.to_utc(local);
        if (instant > t) return instant;
      }
    }
  }
  return std::nullopt;
}

}  // namespace fulcrum::automation
