#include <gtest/gtest.h>

#include <cmath>

#include "sunset/sunset.h"

namespace fulcrum {
namespace {

constexpr UnixSeconds kNow = 1'700'000'000;

// Builds an input where every week has `actives` active users overall.
struct InputBuilder {
  SunsetInput input;
  explicit InputBuilder(std::int64_t actives) {
    input.now = kNow;
    input.weekly_active_users_total.assign(12, actives);
  }
  // weekly users start at `first` and change by `step` per week.
  InputBuilder& feature(const std::string& name, double first, double step,
                        std::int64_t maintenance_minor = 100'00,
                        std::int64_t dependent_revenue_minor = 0,
                        const std::string& category = "misc") {
    Feature feature;
    feature.name = name;
    feature.monthly_maintenance_cost_minor = maintenance_minor;
    feature.category = category;
    input.features.push_back(feature);
    SunsetInput::PerFeature per;
    for (int w = 0; w < 12; ++w) {
      per.weekly_users.push_back(std::max<std::int64_t>(0, std::llround(first + step * w)));
    }
    per.users_in_window = *std::max_element(per.weekly_users.begin(), per.weekly_users.end()) * 2;
    per.dependent_users = per.weekly_users.back();
    per.dependent_paying_users = per.weekly_users.back() / 4;
    per.dependent_revenue_minor = dependent_revenue_minor;
    input.per_feature.push_back(per);
    return *this;
  }
  SunsetInput build() {
    for (auto& per : input.per_feature) per.co_usage.assign(input.features.size(), 0.0);
    return input;
  }
};

const FeatureSunsetAnalysis& find(const std::vector<FeatureSunsetAnalysis>& all,
                                  const std::string& name) {
  for (const auto& analysis : all) {
    if (analysis.feature_name == name) return analysis;
  }
  static FeatureSunsetAnalysis none;
  ADD_FAILURE() << "missing " << name;
  return none;
}

TEST(SunsetRules, DecliningNicheCostlyFeatureIsSunsetWithNoticeDate) {
  SunsetConfig config;
  auto input =
      InputBuilder(1000).feature("legacy", 90, -6, 500'00, 10'00).feature("core", 600, 0).build();
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok()) << result.status().to_string();
  const auto& legacy = find(*result, "legacy");
  EXPECT_EQ(legacy.usage_trend.direction, "declining");
  EXPECT_EQ(legacy.sunset_recommendation, "sunset");
  ASSERT_TRUE(legacy.sunset_date.has_value());
  EXPECT_EQ(*legacy.sunset_date, kNow + 90 * kSecondsPerDay);
  EXPECT_FALSE(legacy.migration_plan.empty());
  const auto& core = find(*result, "core");
  EXPECT_EQ(core.sunset_recommendation, "keep");
  EXPECT_FALSE(core.sunset_date.has_value());
  EXPECT_TRUE(core.to_json()["sunset_date"].is_null());
}

TEST(SunsetRules, DecliningButLucrativeIsDeprecatedNotSunset) {
  SunsetConfig config;
  // Dependents' payments 10000.00 > maintenance 500.00.
  auto input = InputBuilder(1000).feature("legacy", 90, -6, 500'00, 10000'00).build();
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ((*result)[0].sunset_recommendation, "deprecate");
  EXPECT_FALSE((*result)[0].sunset_date.has_value());
}

TEST(SunsetRules, CatalogValuePerDependentPayingUserIsTheRevenueImpact) {
  SunsetConfig config;
  // 24 dependents in the last week, 6 of them paying; value 100.00 each = 600.00 > 500.00.
  auto input = InputBuilder(1000).feature("legacy", 90, -6, 500'00, 1'00).build();
  input.features[0].monthly_revenue_value_minor = 100'00;
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ((*result)[0].revenue_impact, Money::from_minor(6 * 100'00));
  EXPECT_EQ((*result)[0].sunset_recommendation, "deprecate");
  input.features[0].monthly_revenue_value_minor = 50'00;  // 300.00 < 500.00
  result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ((*result)[0].sunset_recommendation, "sunset");
}

TEST(SunsetRules, DecliningMidShareCostlyIsSunsetDecliningCoreIsDeprecated) {
  SunsetConfig config;
  // 18 % of weekly actives and falling: below the core share, so still a sunset candidate.
  auto input = InputBuilder(1000).feature("fading", 360, -16, 500'00).build();
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ((*result)[0].sunset_recommendation, "sunset");
}

TEST(SunsetRules, DecliningWidelyUsedIsDeprecated) {
  SunsetConfig config;
  auto input = InputBuilder(1000).feature("popular_but_fading", 700, -30).build();
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ((*result)[0].usage_trend.direction, "declining");
  EXPECT_EQ((*result)[0].sunset_recommendation, "deprecate");
}

TEST(SunsetRules, GrowingNicheFeatureIsKept) {
  SunsetConfig config;
  // A new feature from 0: share stays small but it is growing.
  auto input = InputBuilder(1000).feature("instant", 0, 5, 900'00).build();
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ((*result)[0].usage_trend.direction, "growing");
  EXPECT_EQ((*result)[0].sunset_recommendation, "keep");
}

TEST(SunsetRules, StableNicheCostlyIsMonitoredStableCheapIsKept) {
  SunsetConfig config;
  auto input = InputBuilder(1000)
                   .feature("niche_costly", 40, 0, 300'00, 0)
                   .feature("niche_cheap", 40, 0, 0, 0)
                   .build();
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ(find(*result, "niche_costly").sunset_recommendation, "monitor");
  EXPECT_EQ(find(*result, "niche_cheap").sunset_recommendation, "keep");
}

TEST(SunsetRules, UnusedFeatureIsSunsetWhenItCostsAndMonitoredWhenFree) {
  SunsetConfig config;
  auto input =
      InputBuilder(1000).feature("dead", 0, 0, 100'00).feature("dead_free", 0, 0, 0).build();
  input.per_feature[0].users_in_window = 0;
  input.per_feature[1].users_in_window = 0;
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ(find(*result, "dead").sunset_recommendation, "sunset");
  EXPECT_EQ(find(*result, "dead_free").sunset_recommendation, "monitor");
}

TEST(SunsetRules, NoActiveUsersAtAllDoesNotDivideByZero) {
  SunsetConfig config;
  auto input = InputBuilder(0).feature("f", 0, 0).build();
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ((*result)[0].current_usage.share_of_active_users, 0.0);
}

TEST(SunsetRules, MigrationPlanSuggestsMostCoUsedSurvivingFeatures) {
  SunsetConfig config;
  auto input = InputBuilder(1000)
                   .feature("legacy", 90, -6, 500'00)
                   .feature("other_legacy", 80, -6, 500'00)
                   .feature("statements", 400, 0)
                   .feature("budgets", 400, 0)
                   .build();
  input.per_feature[0].co_usage = {0.0, 0.9, 0.3, 0.5};
  auto result = analyze_feature_sunset(input, config);
  ASSERT_TRUE(result.is_ok());
  const auto& plan = find(*result, "legacy").migration_plan;
  ASSERT_GE(plan.size(), 3u);
  EXPECT_NE(plan[0].find("Notify"), std::string::npos);
  // other_legacy is also going away, so budgets (0.5) then statements (0.3).
  EXPECT_NE(plan[1].find("budgets"), std::string::npos);
  EXPECT_NE(plan[2].find("statements"), std::string::npos);
  for (const auto& step : plan) EXPECT_EQ(step.find("other_legacy"), std::string::npos);
}

TEST(SunsetRules, BadConfigAndInputNameTheField) {
  SunsetConfig config;
  config.low_share = 0.5;
  config.core_share = 0.2;
  EXPECT_EQ(config.validate().field(), "low_share");
  SunsetInput input;
  input.weekly_active_users_total.assign(3, 0);
  EXPECT_EQ(analyze_feature_sunset(input, SunsetConfig{}).status().field(),
            "weekly_active_users_total");
}

}  // namespace
}  // namespace fulcrum
