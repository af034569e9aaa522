#include "stats/cuped.h"

#include <gtest/gtest.h>

#include <random>

#include "oracle_client.h"
#include "stats/analysis.h"
#include "stats/analysis_json.h"

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

namespace fulcrum::stats {
namespace {

// gbstats packages/stats/tests/frequentist/test_tests.py,
// TestTwoSidedTTest.test_two_sided_ttest_test_runs_ratio_ra (relative, alpha 0.05): published
// rounded to 5 decimals: expected -0.0007, ci (-0.00841, 0.00700), stddev 0.00391,
// p 0.85771.
TEST(RatioCuped, MatchesGbstatsPublishedValues) {
  RatioCupedStats a;
  a.n = 100;
  a.numerator_sum = 485.112236689623;
  a.numerator_sum_squares = 2715.484666118136;
  a.denominator_sum = 679.9093275844917;
  a.denominator_sum_squares = 4939.424001640236;
  a.pre_numerator_sum = 192.59138069991536;
  a.pre_numerator_sum_squares = 460.076026390857;
  a.pre_denominator_sum = 290.1398399750233;
  a.pre_denominator_sum_squares = 920.9461385038898;
  a.numerator_pre_numerator = 1113.6215759318352;
  a.denominator_pre_denominator = 2130.9404074446747;
  a.pre_numerator_pre_denominator = 634.239482353647;
  a.numerator_denominator = 3602.146836776702;
  a.numerator_pre_denominator = 1559.2878434944676;
  a.denominator_pre_numerator = 1460.3181079276983;
  RatioCupedStats b;
  b.n = 100;
  b.numerator_sum = 514.7757826608777;
  b.numerator_sum_squares = 2994.897482705013;
  b.denominator_sum = 705.4090874383759;
  b.denominator_sum_squares = 5291.36604146392;
  b.pre_numerator_sum = 206.94157227402536;
  b.pre_numerator_sum_squares = 514.2903702246757;
  b.pre_denominator_sum = 302.54389139107326;
  b.pre_denominator_sum_squares = 994.4506208125663;
  b.numerator_pre_numerator = 1237.0953021125997;
  b.denominator_pre_denominator = 2292.081739775257;
  b.pre_numerator_pre_denominator = 698.4173425817908;
  b.numerator_denominator = 3918.1561431600717;
  b.numerator_pre_denominator = 1701.0287270040265;
  b.denominator_pre_numerator = 1604.0759503266522;
  auto result = compare_ratio_cuped(a, b, 0.05);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  ASSERT_TRUE(result->comparison.relative.has_value());
  const EffectTest& rel = *result->comparison.relative;
  EXPECT_NEAR(rel.estimate, -0.0007, 5e-6);
  EXPECT_NEAR(rel.standard_error, 0.00391, 5e-6);
  EXPECT_NEAR(rel.ci.lower, -0.00841, 5e-6);
  EXPECT_NEAR(rel.ci.upper, 0.00700, 5e-6);
  EXPECT_NEAR(rel.p_value, 0.85771, 5e-6);
  // The adjustment is what makes the interval this narrow: the plain ratio test of the same
  // users is several times wider.
  auto plain = compare_ratios({100, a.numerator_sum, a.numerator_sum_squares, a.denominator_sum,
                               a.denominator_sum_squares, a.numerator_denominator},
                              {100, b.numerator_sum, b.numerator_sum_squares, b.denominator_sum,
                               b.denominator_sum_squares, b.numerator_denominator},
                              0.05);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_GT(plain->relative->standard_error, 3 * rel.standard_error);
}

// The same gbstats case through `fulcrum analyze`'s JSON: ratio_pre switches ratio CUPED on.
TEST(RatioCuped, AnalysisUsesRatioPreWhenEveryGroupHasIt) {
  const json doc = json::parse(R"({"metrics": [{"name": "revenue_per_session", "type": "ratio",
    "groups": {
      "control": {"n": 100, "sum": 485.112236689623, "sum_squares": 2715.484666118136,
        "denominator_sum": 679.9093275844917, "denominator_sum_squares": 4939.424001640236,
        "ratio_cross_sum": 3602.146836776702,
        "ratio_pre": {"numerator_sum": 192.59138069991536,
          "numerator_sum_squares": 460.076026390857, "denominator_sum": 290.1398399750233,
          "denominator_sum_squares": 920.9461385038898,
          "numerator_x_pre_numerator": 1113.6215759318352,
          "denominator_x_pre_denominator": 2130.9404074446747,
          "pre_numerator_x_pre_denominator": 634.239482353647,
          "numerator_x_pre_denominator": 1559.2878434944676,
          "denominator_x_pre_numerator": 1460.3181079276983}},
      "variant": {"n": 100, "sum": 514.7757826608777, "sum_squares": 2994.897482705013,
        "denominator_sum": 705.4090874383759, "denominator_sum_squares": 5291.36604146392,
        "ratio_cross_sum": 3918.1561431600717,
        "ratio_pre": {"numerator_sum": 206.94157227402536,
          "numerator_sum_squares": 514.2903702246757, "denominator_sum": 302.54389139107326,
          "denominator_sum_squares": 994.4506208125663,
          "numerator_x_pre_numerator": 1237.0953021125997,
          "denominator_x_pre_denominator": 2292.081739775257,
          "pre_numerator_x_pre_denominator": 698.4173425817908,
          "numerator_x_pre_denominator": 1701.0287270040265,
          "denominator_x_pre_numerator": 1604.0759503266522}}}}]})");
  auto input = analysis_input_from_json(doc);
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  EXPECT_TRUE(output->metrics[0].cuped_applied);
  const TreatmentResult& t = *output->metrics[0].groups[1].vs_control;
  EXPECT_NEAR(t.relative->estimate, -0.0007, 5e-6);
  EXPECT_NEAR(t.relative->p_value, 0.85771, 5e-6);

  json broken = doc;
  broken["metrics"][0]["groups"]["variant"]["ratio_pre"].erase("numerator_sum");
  auto missing = analysis_input_from_json(broken);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().field(), "metrics[0].groups.variant.ratio_pre.numerator_sum");
}

}  // namespace
}  // namespace fulcrum::stats
