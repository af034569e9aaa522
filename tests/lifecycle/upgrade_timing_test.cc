// Upgrade timing answers: tiers, dates within the look-ahead, reasons and risks in words,
// projection of engagement, and the store-facing one-shot and service.
#include "lifecycle/upgrade_timing.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "recommend/synthetic.h"

namespace fulcrum {
namespace {

class UpgradeTimingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SyntheticUsageOptions options;
    options.users = 1500;
    options.upgrader_share = 0.35;
    history_ = new EventBatch(make_synthetic_usage(options));
    usage_ = new UsageHistory(UsageHistory::from_events(*history_));
    now_ = options.start + options.days * kSecondsPerDay;
    auto model = UpgradeTimingModel::train(*usage_, now_);
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    model_ = new UpgradeTimingModel(std::move(model).value());
  }
  static void TearDownTestSuite() {
    delete model_;
    delete usage_;
    delete history_;
  }
  static EventBatch* history_;
  static UsageHistory* usage_;
  static UpgradeTimingModel* model_;
  static UnixSeconds now_;
};
EventBatch* UpgradeTimingTest::history_ = nullptr;
UsageHistory* UpgradeTimingTest::usage_ = nullptr;
UpgradeTimingModel* UpgradeTimingTest::model_ = nullptr;
UnixSeconds UpgradeTimingTest::now_ = 0;

TEST_F(UpgradeTimingTest, PremiumUsersAreAlreadyAtTopTierAndUnknownIsNotFound) {
  for (const auto& user : history_->users) {
    if (user.tier != Tier::kPremium) continue;
    auto timing = model_->timing_for(*usage_, user.user_id);
    ASSERT_TRUE(timing.is_ok());
    EXPECT_EQ(timing->current_tier, Tier::kPremium);
    EXPECT_FALSE(timing->optimal_upgrade_date.has_value());
    EXPECT_NE(timing->recommendation.find("top tier"), std::string::npos);
    EXPECT_TRUE(timing->to_json()["optimal_upgrade_date"].is_null());
    break;
  }
  auto missing = model_->timing_for(*usage_, "nobody");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(UpgradeTimingTest, FreeUsersGetDatesInLookaheadWithCalibratedConfidence) {
  int answered = 0, with_reasons = 0;
  double best_confidence = 0;
  for (const auto& user : history_->users) {
    if (user.tier != Tier::kFree) continue;
    auto timing = model_->timing_for(*usage_, user.user_id);
    ASSERT_TRUE(timing.is_ok());
    ASSERT_TRUE(timing->optimal_upgrade_date.has_value());
    EXPECT_GE(*timing->optimal_upgrade_date, floor_to_day(now_));
    EXPECT_LT(*timing->optimal_upgrade_date, floor_to_day(now_) + 30 * kSecondsPerDay);
    EXPECT_GE(timing->confidence_score, timing->propensity_today - 1e-12);
    EXPECT_GE(timing->confidence_score, 0.0);
    EXPECT_LE(timing->confidence_score, 1.0);
    EXPECT_FALSE(timing->recommendation.empty());
    if (!timing->upgrade_reasons.empty()) ++with_reasons;
    best_confidence = std::max(best_confidence, timing->confidence_score);
    auto json = timing->to_json();
    for (const char* field :
         {"timing_id", "user_id", "current_tier", "optimal_upgrade_date", "confidence_score",
          "upgrade_reasons", "risk_factors", "recommendation"}) {
      EXPECT_TRUE(json.contains(field)) << field;
    }
    EXPECT_EQ(json["current_tier"], "free");
    ++answered;
  }
  EXPECT_GT(answered, 100);
  EXPECT_GT(with_reasons, answered / 4);
  EXPECT_GT(best_confidence, 0.1);  // some free users are about to upgrade
}

TEST_F(UpgradeTimingTest, PaywallPressureRaisesPropensityAndIsNamedAsReason) {
  EngagementCounts quiet;
  quiet.active_days_28 = 10;
  quiet.sessions_14 = quiet.sessions_prev_14 = 5;
  quiet.usage_28 = quiet.usage_prev_28 = 10;
  quiet.transactions_28 = 4;
  quiet.tenure_days = 60;
  quiet.distinct_features_28 = 3;
  EngagementCounts pressing = quiet;
  pressing.paywall_14 = 6;
  pressing.paywall_prev_14 = 1;
  EXPECT_GT(model_->projected_propensity(pressing, 0), model_->projected_propensity(quiet, 0));
}

TEST(UpgradeTimingProjection, TrendsContinueForTwoWeeksWithinClamp) {
  EngagementCounts c;
  c.sessions_14 = 9;
  c.sessions_prev_14 = 4;  // growth (9+1)/(4+1) = 2x per 14 days
  c.paywall_14 = 0;
  c.paywall_prev_14 = 3;  // growth 1/4, clamped to 0.5x
  c.active_days_28 = 20;
  c.usage_28 = 10;
  c.tenure_days = 30;
  EngagementCounts week = project_engagement(c, 7);
  EXPECT_NEAR(week.sessions_14, 9 * std::sqrt(2.0), 1e-9);
  EXPECT_NEAR(week.paywall_prev_14, 3 * std::sqrt(0.5), 1e-9);
  EXPECT_DOUBLE_EQ(week.tenure_days, 37);
  EngagementCounts month = project_engagement(c, 30);
  EXPECT_NEAR(month.sessions_14, 18, 1e-9);
  EXPECT_DOUBLE_EQ(month.active_days_28, 28);  // capped at the window length
  EXPECT_NEAR(month.usage_28, 20, 1e-9);
  EXPECT_DOUBLE_EQ(month.tenure_days, 60);
  // Growing both windows keeps the ratio, so the smoothed trend moves toward log(9/4).
  double trend = upgrade_features(c)[kSessionTrend];
  double projected_trend = upgrade_features(month)[kSessionTrend];
  EXPECT_GE(projected_trend, trend);
  EXPECT_LE(projected_trend, std::log(9.0 / 4.0));
}

TEST(UpgradeTimingStore, OneShotAndServiceOverSqlite) {
  auto path = std::filesystem::temp_directory_path() /
              ("upgrade_timing_" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(path);
  auto store = open_store(path.string());
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  SyntheticUsageOptions options;
  options.users = 600;
  options.upgrader_share = 0.4;
  EventBatch history = make_synthetic_usage(options);
  ASSERT_TRUE((*store)->ingest(history).is_ok());
  ManualClock clock(options.start + options.days * kSecondsPerDay);
  std::string free_user;
  for (const auto& u : history.users) {
    if (u.tier == Tier::kFree) {
      free_user = u.user_id;
      break;
    }
  }
  auto one_shot = optimize_upgrade_timing(**store, clock, free_user);
  ASSERT_TRUE(one_shot.is_ok()) << one_shot.status().to_string();
  UpgradeTimingService service;
  auto served = service.for_user(**store, clock, free_user);
  ASSERT_TRUE(served.is_ok());
  EXPECT_EQ(one_shot->to_json(), served->to_json());
  EXPECT_EQ(optimize_upgrade_timing(**store, clock, "ghost").status().code(),
            StatusCode::kNotFound);
  EventBatch joined;
  User newcomer;
  newcomer.user_id = "newcomer";
  newcomer.signup_at = clock.now() - kSecondsPerDay;
  joined.users.push_back(newcomer);
  ASSERT_TRUE((*store)->ingest(joined).is_ok());
  auto fresh = service.for_user(**store, clock, "newcomer");
  ASSERT_TRUE(fresh.is_ok()) << fresh.status().to_string();
  EXPECT_EQ(fresh->current_tier, Tier::kFree);
  auto evaluation = evaluate_upgrade_timing(**store, clock.now());
  ASSERT_TRUE(evaluation.is_ok()) << evaluation.status().to_string();
  EXPECT_GT(evaluation->holdout_rows, 0);
  store->reset();
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace fulcrum
