// Job schedules: a cron expression (5 fields, Vixie cron semantics) or a fixed interval,
// evaluated in an IANA time zone (Howard Hinnant's date/tz over the system's zoneinfo) or a
// fixed UTC offset. Pure computation: "when did this schedule last fire at or before t" and
// "when does it fire next after t", in Unix seconds.
//
// Cron fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week 0-7 (0 and
// 7 are Sunday); each a list of `*`, `N`, `A-B`, with an optional `/STEP`. When both day of
// month and day of week are restricted, a day matches either (as cron does). Macros:
// @hourly, @daily (@midnight), @weekly (Sunday 00:00), @monthly. Intervals: "every 30s",
// "every 15m", "every 6h", "every 1d", counted from the Unix epoch (so every replica agrees).
// Daylight saving: a local time that does not exist (spring forward) fires at the end of the
// gap; one that occurs twice (fall back) fires once, at its first occurrence.
#pragma once

#include <array>
#include <bitset>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/time.h"

namespace date {
class time_zone;
}

namespace fulcrum::automation {

// "Europe/Berlin" (IANA), "UTC", or a fixed offset "+02:00" / "-05:30".
class TimeZone {
 public:
  // kInvalidArgument naming `field` for an unknown zone or malformed offset.
  static Result<TimeZone> parse(std::string_view name, std::string field = "timezone");
  static TimeZone utc() { return TimeZone(); }
  const std::string& name() const { return name_; }
  // Seconds since the epoch of local wall-clock time (local "as if UTC").
  std::int64_t to_local(UnixSeconds t) const;
  // The instant of a local wall-clock time: nonexistent -> end of the gap; ambiguous -> the
  // first occurrence.
  UnixSeconds to_utc(std::int64_t local) const;

 private:
  TimeZone() = default;
  std::string name_ = "UTC";
  const date::time_zone* zone_ = nullptr;  // null: fixed offset
  std::int64_t offset_seconds_ = 0;
};

class Schedule {
 public:
  // kInvalidArgument naming `field` ("schedule") when the text is not a valid schedule.
  static Result<Schedule> parse(std::string_view text, TimeZone zone,
                                std::string field = "schedule");
  const std::string& text() const { return text_; }
  const TimeZone& zone() const { return zone_; }
  // The latest fire time <= t (nullopt only when the schedule never fires within 5 years).
  std::optional<UnixSeconds> last_fire_at_or_before(UnixSeconds t) const;
  // The first fire time > t.
  std::optional<UnixSeconds> next_fire_after(UnixSeconds t) const;
  // The period a fire time names: ISO-8601 UTC of the fire time.
  static std::string period_key(UnixSeconds fire_time) { return format_iso8601(fire_time); }

 private:
  Schedule(TimeZone zone) : zone_(std::move(zone)) {}
  bool day_matches(std::int64_t local_day) const;
  std::string text_;
  TimeZone zone_;
  std::int64_t interval_seconds_ = 0;  // > 0: an interval schedule
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;
  std::bitset<13> months_;
  std::bitset<7> days_of_week_;
  bool dom_restricted_ = false, dow_restricted_ = false;
};

}  // namespace fulcrum::automation
