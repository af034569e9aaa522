#include "core/time.h"

#include <gtest/gtest.h>

namespace fulcrum {
namespace {

TEST(TimeTest, FormatsAndParsesRoundTrip) {
  EXPECT_EQ(format_iso8601(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_iso8601(1704067200), "2024-01-01T00:00:00Z");
  EXPECT_EQ(format_iso8601(951825600), "2000-02-29T12:00:00Z");
  for (UnixSeconds t : {0LL, 1704067200LL, 951825600LL, 4102444799LL, 1709210096LL}) {
    auto parsed = parse_iso8601(format_iso8601(t));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, t);
  }
}

TEST(TimeTest, ParsesOffsetsFractionsAndDates) {
  EXPECT_EQ(parse_iso8601("2024-01-01T02:00:00+02:00"), 1704067200);
  EXPECT_EQ(parse_iso8601("2023-12-31T19:00:00-05:00"), 1704067200);
  EXPECT_EQ(parse_iso8601("2024-01-01T00:00:00.250Z"), 1704067200);
  EXPECT_EQ(parse_iso8601("2024-01-01"), 1704067200);
}

TEST(TimeTest, RejectsMalformedInput) {
  for (const char* bad : {"", "2024", "2024-13-01", "2023-02-29", "2024-01-01T25:00:00Z",
                          "2024-01-01T00:00:00", "2024-01-01T00:00:00+0200", "x024-01-01",
                          "2024-01-01T00:00:00Zjunk"}) {
    EXPECT_FALSE(parse_iso8601(bad).has_value()) << bad;
  }
}

TEST(TimeTest, FloorsToUtcDayIncludingNegativeTimes) {
  EXPECT_EQ(floor_to_day(1704067200 + 3600), 1704067200);
  EXPECT_EQ(floor_to_day(-1), -kSecondsPerDay);
}

TEST(TimeTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(100);
  EXPECT_EQ(clock.now(), 100);
  clock.advance(kSecondsPerDay);
  EXPECT_EQ(clock.now(), 100 + kSecondsPerDay);
  SystemClock system;
  EXPECT_GT(system.now(), 1700000000);
}

}  // namespace
}  // namespace fulcrum
