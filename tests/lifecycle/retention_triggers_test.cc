#include "lifecycle/retention_triggers.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

namespace fulcrum {
namespace {

constexpr UnixSeconds kNow = 1'700'000'000;
constexpr UnixSeconds kDay = kSecondsPerDay;

// `per_day(d)` activity events on each day d days before now (d = 1 is the last day).
template <typename PerDay>
void add_daily_sessions(UserActivity& activity, const std::string& user, int days, PerDay per_day) {
  for (int d = 1; d <= days; ++d) {
    for (int i = 0; i < per_day(d); ++i) activity.record_session(user, kNow - d * kDay + 3600);
  }
}

TEST(UserActivity, BucketsAlignToNowAndSumWindows) {
  UserActivity activity(kNow, 10);
  activity.record_session("u1", kNow - 1);              // last day
  activity.record_session("u1", kNow - kDay);           // first second of the last day
  activity.record_session("u1", kNow - kDay - 1);       // the day before
  activity.record_session("u1", kNow);                  // at now: outside (exclusive)
  activity.record_session("u1", kNow - 10 * kDay - 1);  // before the window
  int user = activity.find_user("u1");
  ASSERT_GE(user, 0);
  EXPECT_EQ(activity.activity(user, 9), 2);
  EXPECT_EQ(activity.activity(user, 8), 1);
  EXPECT_EQ(activity.activity_sum(user, 0, 10), 3);
  EXPECT_EQ(activity.active_days(user, 0, 10), 2);
  EXPECT_EQ(activity.last_active_day(user, 9), 8);
  EXPECT_EQ(activity.find_user("nobody"), -1);
}

TEST(UserActivity, FeatureDayBitsworkAcrossWordBoundaries) {
  UserActivity activity(kNow, 130);
  activity.record_feature_use("u", "f", activity.day_start(63) + 5, 2);
  activity.record_feature_use("u", "f", activity.day_start(64) + 5, 1);
  activity.add_user("later");  // growing the user set keeps earlier bits
  int user = activity.find_user("u");
  EXPECT_TRUE(activity.used_feature(user, 0, 63));
  EXPECT_TRUE(activity.used_feature(user, 0, 64));
  EXPECT_FALSE(activity.used_feature(user, 0, 65));
  EXPECT_TRUE(activity.used_feature_between(user, 0, 60, 64));
  EXPECT_TRUE(activity.used_feature_between(user, 0, 64, 65));
  EXPECT_FALSE(activity.used_feature_between(user, 0, 65, 130));
  EXPECT_FALSE(activity.used_feature_between(user, 0, 0, 63));
  EXPECT_FALSE(activity.used_feature_ever(activity.find_user("later"), 0));
  EXPECT_EQ(activity.activity_sum(user, 0, 130), 3);
}

RetentionTriggerConfig default_config() { return RetentionTriggerConfig{}; }

TEST(UsageDrop, FiresAtHalfTheBaselineRate) {
  UserActivity activity(kNow, 120);
  // Baseline 28 days at 2/day = 14/week; last 7 days: 1/day = 7/week (drop 0.5).
  add_daily_sessions(activity, "dropper", 35, [](int d) { return d <= 7 ? 1 : 2; });
  // Drop of 3/7 only.
  add_daily_sessions(activity, "steady", 35, [](int d) { return d <= 7 ? (d <= 4 ? 1 : 2) : 2; });
  // Baseline 0.5/day = 3.5/week, below the minimum of 5.
  add_daily_sessions(activity, "light", 35, [](int d) { return d > 7 && d % 2 == 0 ? 1 : 0; });
  auto config = default_config();
  auto match = detect_usage_drop(activity, activity.find_user("dropper"), config);
  ASSERT_TRUE(match.has_value());
  EXPECT_NEAR(match->score, 0.5, 1e-12);
  EXPECT_FALSE(detect_usage_drop(activity, activity.find_user("steady"), config));
  EXPECT_FALSE(detect_usage_drop(activity, activity.find_user("light"), config));
  config.usage_drop_min_baseline_weekly = 3.0;
  EXPECT_TRUE(detect_usage_drop(activity, activity.find_user("light"), config));
}

// Verifies the OLS slope p-value against scipy.stats.linregress.
TEST(EngagementDecline, SlopeTestMatchesScipyLinregress) {
  std::vector<double> y = {20, 19, 17, 18, 12, 11, 9, 8};
  SlopeTest test = ols_slope_test(y);
  std::string command =
      "/usr/bin/python3 -c \"from scipy.stats import linregress; "
      "r = linregress(range(8), [20,19,17,18,12,11,9,8]); print(r.slope, r.pvalue)\"";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  ASSERT_TRUE(pipe);
  double slope = 0, p_value = 0;
  ASSERT_EQ(fscanf(pipe.get(), "%lf %lf", &slope, &p_value), 2);
  EXPECT_NEAR(test.slope, slope, 1e-12);
  EXPECT_NEAR(test.p_value, p_value, 1e-9 + 1e-7 * p_value);
}

TEST(EngagementDecline, FiresOnSignificantDeclineOnly) {
  UserActivity activity(kNow, 120);
  // Week w (0 = oldest of 8) has 14 - 1.5w events spread over the week.
  auto declining = [](int d) {
    int week_from_end = (d - 1) / 7;  // 0 = last week
    int week = 7 - week_from_end;
    if (week < 0) return 0;
    int weekly = 14 - 3 * week / 2;
    int day_in_week = (d - 1) % 7;
    return day_in_week < weekly % 7 ? weekly / 7 + 1 : weekly / 7;
  };
  add_daily_sessions(activity, "decliner", 56, declining);
  add_daily_sessions(activity, "flat", 56, [](int d) { return 1 + d % 3; });
  auto config = default_config();
  auto match = detect_engagement_decline(activity, activity.find_user("decliner"), config);
  ASSERT_TRUE(match.has_value());
  EXPECT_LT(match->score, 0.05);
  EXPECT_FALSE(detect_engagement_decline(activity, activity.find_user("flat"), config));
}

TEST(PaymentIssue, UnrecoveredFailuresOnly) {
  UserActivity activity(kNow, 60);
  activity.record_payment("failed", kNow - 10 * kDay, false, 999);
  activity.record_payment("recovered", kNow - 10 * kDay, false, 999);
  activity.record_payment("recovered", kNow - 8 * kDay, true, 999);
  activity.record_payment("too_recent", kNow - 1 * kDay, false, 999);
  activity.record_payment("old", kNow - 45 * kDay, false, 999);
  activity.record_payment("fail_after_success", kNow - 20 * kDay, true, 999);
  activity.record_payment("fail_after_success", kNow - 5 * kDay, false, 999);
  activity.finish();
  auto config = default_config();
  auto fires = [&](const char* user) {
    return detect_payment_issue(activity, activity.find_user(user), config).has_value();
  };
  EXPECT_TRUE(fires("failed"));
  EXPECT_FALSE(fires("recovered"));
  EXPECT_FALSE(fires("too_recent"));
  EXPECT_FALSE(fires("old"));
  EXPECT_TRUE(fires("fail_after_success"));
}

TEST(FeatureAbandonment, RegularUseThenIdle) {
  UserActivity activity(kNow, 120);
  // Days 15..42 before now = the 4 weeks before the 14 idle days.
  for (int d = 15; d <= 42; d += 7) {
    activity.record_feature_use("abandoner", "budgets", kNow - d * kDay, 1);
    activity.record_feature_use("leaver", "budgets", kNow - d * kDay, 1);
    activity.record_feature_use("still_using", "budgets", kNow - d * kDay, 1);
  }
  // Used in only 2 of the 4 weeks.
  UserActivity sparse(kNow, 120);
  sparse.record_feature_use("occasional", "budgets", kNow - 20 * kDay, 1);
  sparse.record_feature_use("occasional", "budgets", kNow - 30 * kDay, 1);
  sparse.record_session("occasional", kNow - 2 * kDay);
  for (const char* user : {"abandoner", "still_using"}) {
    activity.record_session(user, kNow - 3 * kDay);  // still around
  }
  activity.record_feature_use("still_using", "budgets", kNow - 2 * kDay, 1);
  auto config = default_config();
  auto match = detect_feature_abandonment(activity, activity.find_user("abandoner"), config);
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->detail, "budgets");
  EXPECT_FALSE(detect_feature_abandonment(activity, activity.find_user("leaver"), config));
  EXPECT_FALSE(detect_feature_abandonment(activity, activity.find_user("still_using"), config));
  EXPECT_FALSE(detect_feature_abandonment(sparse, sparse.find_user("occasional"), config));
}

TEST(RetentionTriggerConfig, RejectsBadThresholdsNamingTheField) {
  auto config = default_config();
  config.usage_drop_min_drop = 1.5;
  EXPECT_EQ(config.validate().field(), "usage_drop_min_drop");
  config = default_config();
  config.abandon_min_weeks_used = 5;
  EXPECT_EQ(config.validate().field(), "abandon_min_weeks_used");
  config = default_config();
  config.churn.l2 = -1;
  EXPECT_EQ(config.validate().field(), "churn.l2");
  EXPECT_TRUE(default_config().validate().is_ok());
}

TEST(TriggerTypes, RoundTripNames) {
  for (TriggerType type : all_trigger_types()) {
    EXPECT_EQ(parse_trigger_type(trigger_type_name(type)), type);
  }
  EXPECT_FALSE(parse_trigger_type("nope").has_value());
  EXPECT_EQ(all_trigger_types().size(), 5u);
}

}  // namespace
}  // namespace fulcrum
