// Schedules: cron fields, macros, intervals, fixed offsets and IANA zones across daylight
// saving transitions. Expected instants are from Python's zoneinfo (an independent tz
// implementation over the same tzdata): e.g. Berlin 2026-03-29 03:00 CEST = 01:00Z.
#include "automation/schedule.h"

#include <gtest/gtest.h>

namespace fulcrum::automation {
namespace {

UnixSeconds at(const char* iso) { return *parse_iso8601(iso); }

Schedule schedule(const char* text, const char* zone = "UTC") {
  auto tz = TimeZone::parse(zone);
  EXPECT_TRUE(tz.is_ok()) << tz.status().to_string();
  auto parsed = Schedule::parse(text, *tz);
  EXPECT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  return *parsed;
}

TEST(ScheduleTest, DailyInUtc) {
  Schedule daily = schedule("0 6 * * *");
  EXPECT_EQ(*daily.last_fire_at_or_before(at("2026-12-02T05:59:59Z")), at("2026-12-01T06:00:00Z"));
  EXPECT_EQ(*daily.last_fire_at_or_before(at("2026-12-02T06:00:00Z")), at("2026-12-02T06:00:00Z"));
  EXPECT_EQ(*daily.next_fire_after(at("2026-12-02T06:00:00Z")), at("2026-12-03T06:00:00Z"));
  EXPECT_EQ(Schedule::period_key(at("2026-12-02T06:00:00Z")), "2026-12-02T06:00:00Z");
}

TEST(ScheduleTest, StepsListsRangesAndWeekdays) {
  EXPECT_EQ(*schedule("*/15 * * * *").next_fire_after(at("2026-12-02T00:07:00Z")),
            at("2026-12-02T00:15:00Z"));
  // 2026-12-02 is a Wednesday; the next Monday 07:00 is 12-07.
  EXPECT_EQ(*schedule("0 7 * * 1").next_fire_after(at("2026-12-02T00:00:00Z")),
            at("2026-12-07T07:00:00Z"));
  EXPECT_EQ(*schedule("0 0 * * 7").next_fire_after(at("2026-12-02T00:00:00Z")),
            at("2026-12-06T00:00:00Z"));  // 7 is Sunday too
  EXPECT_EQ(*schedule("30 8-10/2 * * 1-5").next_fire_after(at("2026-12-02T08:31:00Z")),
            at("2026-12-02T10:30:00Z"));
  EXPECT_EQ(*schedule("0 12 1,15 * *").next_fire_after(at("2026-12-02T00:00:00Z")),
            at("2026-12-15T12:00:00Z"));
  // Day of month and day of week both restricted: either matches (cron): Friday 12-04
  // comes before the 13th.
  EXPECT_EQ(*schedule("0 0 13 * 5").next_fire_after(at("2026-12-02T00:00:00Z")),
            at("2026-12-04T00:00:00Z"));
  EXPECT_EQ(*schedule("@weekly").next_fire_after(at("2026-12-02T00:00:00Z")),
            at("2026-12-06T00:00:00Z"));
  EXPECT_EQ(*schedule("0 0 29 2 *").next_fire_after(at("2026-12-02T00:00:00Z")),
            at("2028-02-29T00:00:00Z"));
}

TEST(ScheduleTest, IntervalsCountFromTheEpoch) {
  Schedule every = schedule("every 15m");
  EXPECT_EQ(*every.last_fire_at_or_before(at("2026-12-02T00:29:59Z")), at("2026-12-02T00:15:00Z"));
  EXPECT_EQ(*every.next_fire_after(at("2026-12-02T00:15:00Z")), at("2026-12-02T00:30:00Z"));
}

TEST(ScheduleTest, FixedOffsetZone) {
  Schedule india = schedule("0 9 * * *", "+05:30");
  EXPECT_EQ(*india.next_fire_after(at("2026-12-02T00:00:00Z")), at("2026-12-02T03:30:00Z"));
  Schedule west = schedule("0 9 * * *", "-05:00");
  EXPECT_EQ(*west.next_fire_after(at("2026-12-02T00:00:00Z")), at("2026-12-02T14:00:00Z"));
}

TEST(ScheduleTest, IanaZoneFollowsDaylightSaving) {
  Schedule berlin = schedule("0 6 * * *", "Europe/Berlin");
  EXPECT_EQ(*berlin.next_fire_after(at("2026-12-02T00:00:00Z")), at("2026-12-02T05:00:00Z"));
  EXPECT_EQ(*berlin.next_fire_after(at("2026-07-01T00:00:00Z")), at("2026-07-01T04:00:00Z"));
  // 02:30 does not exist on 2026-03-29 (clocks jump 02:00 -> 03:00): it fires at the end of
  // the gap, 03:00 CEST = 01:00Z, once.
  Schedule gap = schedule("30 2 * * *", "Europe/Berlin");
  EXPECT_EQ(*gap.next_fire_after(at("2026-03-28T12:00:00Z")), at("2026-03-29T01:00:00Z"));
  EXPECT_EQ(*gap.last_fire_at_or_before(at("2026-03-29T02:00:00Z")), at("2026-03-29T01:00:00Z"));
  // 02:30 happens twice on 2026-10-25: it fires at the first (CEST, 00:30Z) and not again at
  // the second (CET, 01:30Z); the next fire is the following day, 02:30 CET = 01:30Z.
  EXPECT_EQ(*gap.next_fire_after(at("2026-10-24T12:00:00Z")), at("2026-10-25T00:30:00Z"));
  EXPECT_EQ(*gap.next_fire_after(at("2026-10-25T00:30:00Z")), at("2026-10-26T01:30:00Z"));
  EXPECT_EQ(*gap.last_fire_at_or_before(at("2026-10-25T01:45:00Z")), at("2026-10-25T00:30:00Z"));
  Schedule new_york = schedule("30 2 * * *", "America/New_York");
  EXPECT_EQ(*new_york.next_fire_after(at("2026-03-07T12:00:00Z")), at("2026-03-08T07:00:00Z"));
}

TEST(ScheduleTest, BadSchedulesNameTheField) {
  const TimeZone utc = TimeZone::utc();
  for (const char* bad : {"61 * * * *", "* * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                          "* * * * 8", "*/0 * * * *", "5-1 * * * *", "every 5s", "every 2w",
                          "every m", "@yearly", "", "a b c d e"}) {
    auto parsed = Schedule::parse(bad, utc);
    ASSERT_FALSE(parsed.is_ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(parsed.status().field(), "schedule") << bad;
  }
  for (const char* bad : {"Mars/Olympus_Mons", "+25:00", "+0200", "-05:60", ""}) {
    auto zone = TimeZone::parse(bad);
    ASSERT_FALSE(zone.is_ok()) << bad;
    EXPECT_EQ(zone.status().field(), "timezone") << bad;
  }
}

}  // namespace
}  // namespace fulcrum::automation
