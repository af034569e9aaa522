#include "stats/recommendation.h"

#include <gtest/gtest.h>

namespace fulcrum::stats {
namespace {

RecommendationInput base_input() {
  RecommendationInput input;
  input.metric = "conversion_rate";
  input.treatment = "variant";
  input.alpha = 0.05;
  input.effect.estimate = 0.08;
  input.effect.ci = {0.02, 0.14};
  input.n_per_group = 5000;
  input.required_n_per_group = 12000.4;
  input.daily_users_per_group = 500;
  return input;
}

TEST(Recommend, SignificantImprovementShips) {
  RecommendationInput input = base_input();
  input.p_value = 0.004;
  const Recommendation rec = recommend(input);
  EXPECT_EQ(rec.action, Action::kShip);
  EXPECT_STREQ(action_name(rec.action), "ship");
  EXPECT_NE(rec.text.find("+8.00%"), std::string::npos) << rec.text;
  EXPECT_FALSE(rec.days_needed.has_value());
}

TEST(Recommend, SignificantHarmStops) {
  RecommendationInput input = base_input();
  input.p_value = 0.004;
  input.effect.estimate = -0.08;
  input.effect.ci = {-0.14, -0.02};
  EXPECT_EQ(recommend(input).action, Action::kStop);
  input.higher_is_better = false;  // a drop in e.g. churn is good
  EXPECT_EQ(recommend(input).action, Action::kShip);
}

TEST(Recommend, UnderpoweredKeepsRunningWithDays) {
  RecommendationInput input = base_input();
  input.p_value = 0.2;
  const Recommendation rec = recommend(input);
  EXPECT_EQ(rec.action, Action::kKeepRunning);
  ASSERT_TRUE(rec.additional_users_per_group.has_value());
  EXPECT_EQ(*rec.additional_users_per_group, 7001);  // ceil(12000.4 - 5000)
  ASSERT_TRUE(rec.days_needed.has_value());
  EXPECT_EQ(*rec.days_needed, 15);  // ceil(7000.4 / 500)
  EXPECT_NE(rec.text.find("15 more days"), std::string::npos) << rec.text;
}

TEST(Recommend, PoweredNullStops) {
  RecommendationInput input = base_input();
  input.p_value = 0.6;
  input.n_per_group = 13000;
  EXPECT_EQ(recommend(input).action, Action::kStop);
}

TEST(Recommend, SampleRatioMismatchAlwaysStops) {
  RecommendationInput input = base_input();
  input.p_value = 0.001;
  input.sample_ratio_mismatch = true;
  const Recommendation rec = recommend(input);
  EXPECT_EQ(rec.action, Action::kStop);
  EXPECT_NE(rec.text.find("sample ratio mismatch"), std::string::npos);
}

}  // namespace
}  // namespace fulcrum::stats
