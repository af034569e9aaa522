#include "stats/cuped.h"

#include <gtest/gtest.h>

#include <random>

#include "oracle_client.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;

struct RawGroup {
  std::vector<double> pre, post;
};

RawGroup simulate(std::mt19937_64& rng, int n, double pre_mean, double slope, double effect,
                  double noise) {
  std::normal_distribution<double> pre_dist(pre_mean, 10), noise_dist(0, noise);
  RawGroup group;
  for (int i = 0; i < n; ++i) {
    const double pre = pre_dist(rng);
    group.pre.push_back(pre);
    group.post.push_back(5 + slope * pre + effect + noise_dist(rng));
  }
  return group;
}

CupedStats cuped_stats(const std::vector<double>& pre, const std::vector<double>& post) {
  CupedStats stats;
  stats.post.n = static_cast<std::int64_t>(post.size());
  for (size_t i = 0; i < post.size(); ++i) {
    stats.post.sum += post[i];
    stats.post.sum_squares += post[i] * post[i];
    stats.pre_sum += pre[i];
    stats.pre_sum_squares += pre[i] * pre[i];
    stats.cross_sum += pre[i] * post[i];
  }
  return stats;
}

json cuped_cases() {
  std::mt19937_64 rng(2013);
  std::uniform_int_distribution<int> n_dist(20, 400);
  std::uniform_real_distribution<double> slope_dist(-1.5, 1.5), noise_dist(1, 20),
      effect_dist(-3, 3);
  json cases = json::array();
  for (int i = 0; i < 100; ++i) {
    const double slope = slope_dist(rng), noise = noise_dist(rng);
    RawGroup control = simulate(rng, n_dist(rng), 50, slope, 0, noise);
    RawGroup treatment = simulate(rng, n_dist(rng), 50, slope, effect_dist(rng), noise);
    cases.push_back({{"alpha", 0.05},
                     {"control_pre", control.pre},
                     {"control_post", control.post},
                     {"treatment_pre", treatment.pre},
                     {"treatment_post", treatment.post}});
  }
  return cases;
}

[[maybe_unused]] const bool kRegistered = testing::register_oracle_cases("cuped", cuped_cases());

// The oracle adjusts every raw value with the pooled theta and runs scipy's
// Welch ttest_ind on them, so this checks the sufficient-statistics algebra end
// to end.
TEST(Cuped, MatchesWelchOnAdjustedRawValues) {
  const auto& batch = testing::oracle_batch("cuped");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i));
    const CupedStats control = cuped_stats(c["control_pre"], c["control_post"]);
    const CupedStats treatment = cuped_stats(c["treatment_pre"], c["treatment_post"]);
    auto adjustment = cuped_adjust({control, treatment});
    ASSERT_TRUE(adjustment.is_ok()) << adjustment.status().to_string();
    const json& e = batch.expected[i];
    EXPECT_TRUE(close(adjustment->theta, e["theta"]));
    auto result = compare_cuped(control, treatment, 0.05);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const EffectTest& abs = result->absolute;
    const double width = abs.ci.upper - abs.ci.lower;
    EXPECT_TRUE(close(abs.estimate, e["estimate"], abs.standard_error));
    EXPECT_TRUE(close(abs.p_value, e["p_value"]));
    EXPECT_TRUE(close(abs.ci.lower, e["ci"][0], width));
    EXPECT_TRUE(close(abs.ci.upper, e["ci"][1], width));
    EXPECT_TRUE(close(adjustment->adjusted[0].mean, e["adjusted_means"][0], 1));
    EXPECT_TRUE(close(adjustment->adjusted[1].mean, e["adjusted_means"][1], 1));
  }
}

TEST(Cuped, ReducesVarianceByTheSquaredCorrelation) {
  // post = 5 + pre + noise with sd(pre) = 10, sd(noise) = 10: rho^2 = 0.5, so
  // the CUPED standard error should be about sqrt(0.5) of the plain one.
  std::mt19937_64 rng(42);
  RawGroup control = simulate(rng, 20000, 50, 1.0, 0, 10);
  RawGroup treatment = simulate(rng, 20000, 50, 1.0, 0.5, 10);
  const CupedStats c = cuped_stats(control.pre, control.post);
  const CupedStats t = cuped_stats(treatment.pre, treatment.post);
  auto plain = compare_means(c.post, t.post, 0.05);
  auto adjusted = compare_cuped(c, t, 0.05);
  ASSERT_TRUE(plain.is_ok() && adjusted.is_ok());
  const double ratio = adjusted->absolute.standard_error / plain->absolute.standard_error;
  EXPECT_NEAR(ratio, std::sqrt(0.5), 0.02);
  // The true effect 0.5 is inside the tighter interval, and CUPED detects it
  // more strongly.
  EXPECT_LT(adjusted->absolute.ci.lower, 0.5);
  EXPECT_GT(adjusted->absolute.ci.upper, 0.5);
  EXPECT_LT(adjusted->absolute.p_value, plain->absolute.p_value);
}

TEST(Cuped, UncorrelatedCovariateChangesLittle) {
  std::mt19937_64 rng(7);
  RawGroup control = simulate(rng, 5000, 50, 0.0, 0, 10);
  RawGroup treatment = simulate(rng, 5000, 50, 0.0, 0, 10);
  auto adjustment = cuped_adjust(
      {cuped_stats(control.pre, control.post), cuped_stats(treatment.pre, treatment.post)});
  ASSERT_TRUE(adjustment.is_ok());
  EXPECT_NEAR(adjustment->theta, 0, 0.05);
  EXPECT_NEAR(adjustment->adjusted[0].variance / adjustment->unadjusted[0].variance, 1, 0.01);
}

TEST(Cuped, RejectsBadPreSums) {
  CupedStats bad{{10, 10, 20}, 100, 5, 3};  // pre_sum_squares < pre_sum^2 / n
  CupedStats good{{10, 10, 20}, 10, 20, 15};
  EXPECT_EQ(cuped_adjust({bad, bad}).status().field(), "pre_sum_squares");
  EXPECT_TRUE(cuped_adjust({good, good}).is_ok());
}

}  // namespace
}  // namespace fulcrum::stats
