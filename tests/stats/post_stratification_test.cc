// Post-stratification against gbstats' published test values
// (packages/stats/tests/frequentist/test_post_strat.py, TestPostStratification.setUp:
// stats_count_strata with point_estimate_count_rel/abs and standard_error_count_rel/abs;
// test_post_strat_count_gbstats for the interval, whose Student t quantile at the pooled Welch
// df was computed with scipy: t.ppf(0.975, 970.6999536705576) = 1.962410859735337).
#include "stats/post_stratification.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace fulcrum::stats {
namespace {

SampleStats group(std::int64_t n, double sum, double sum_squares) { return {n, sum, sum_squares}; }

std::vector<Stratum> gbstats_count_strata() {
  return {
      {group(21, 330.0696210595999, 5377.811252605509),
       group(42, 708.1220000911836, 12249.255519049513)},
      {group(65, 1391.96628040659, 30546.63404187155),
       group(75, 1807.4703052657744, 45000.287664918586)},
      {group(102, 2916.824124651419, 86396.06886690554),
       group(101, 3104.5399914554023, 98365.40553530994)},
      {group(151, 5172.587929941052, 182453.04528037464),
       group(121, 4613.696610070716, 180520.64781229294)},
      {group(160, 6539.348445231273, 274981.98909352464),
       group(162, 7431.953259880505, 349244.6690736718)},
  };
}

void expect_close(double actual, double expected, double relative = 1e-9) {
  EXPECT_NEAR(actual, expected, std::abs(expected) * relative) << "expected " << expected;
}

TEST(PostStratification, MatchesGbstatsPublishedCountValues) {
  auto result = compare_post_stratified(gbstats_count_strata(), StratifiedMetric::kMean, 0.05);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_EQ(result->strata_used, 5u);
  EXPECT_EQ(result->strata_merged, 0u);
  const EffectTest& absolute = result->comparison.absolute;
  expect_close(absolute.estimate, 3.548094377986586);
  expect_close(absolute.standard_error, 0.37634374823059685);
  expect_close(absolute.df, 970.6999536705576);
  expect_close(absolute.ci.lower, 2.809553319465361);
  expect_close(absolute.ci.upper, 4.286635436507811);
  ASSERT_TRUE(result->comparison.relative.has_value());
  const EffectTest& relative = *result->comparison.relative;
  expect_close(relative.estimate, 0.10994584851937336);
  expect_close(relative.standard_error, 0.012225394656480164);
  expect_close(relative.ci.lower, 0.08595460128094633);
  expect_close(relative.ci.upper, 0.13393709575780038);
  // The strata explain much of the variance: the unstratified interval is wider.
  EXPECT_GT(result->unstratified.absolute.standard_error, absolute.standard_error);
}

// gbstats test_count_relative_point_estimate_uses_negative_baseline_magnitude: the relative
// lift divides by |control mean|.
TEST(PostStratification, RelativeLiftDividesByTheBaselinesMagnitude) {
  auto sample_mean = [](double mean) { return group(1000, mean * 1000, (mean * mean + 4) * 1000); };
  for (auto [variation, expected] : {std::pair{-5.0, 0.5}, {-15.0, -0.5}, {5.0, 1.5}}) {
    std::vector<Stratum> strata(2, Stratum{sample_mean(-10), sample_mean(variation)});
    auto result = compare_post_stratified(strata, StratifiedMetric::kMean, 0.05);
    ASSERT_TRUE(result.is_ok());
    EXPECT_NEAR(result->comparison.relative->estimate, expected, 1e-12) << variation;
  }
}

TEST(PostStratification, AStratumThatCannotStandAloneJoinsTheLargest) {
  std::vector<Stratum> strata = gbstats_count_strata();
  const Stratum tiny{group(3, 30.0, 310.0), group(1, 12.0, 144.0)};  // one treated user
  strata.push_back(tiny);
  auto with_tiny = compare_post_stratified(strata, StratifiedMetric::kMean, 0.05);
  ASSERT_TRUE(with_tiny.is_ok());
  EXPECT_EQ(with_tiny->strata_used, 5u);
  EXPECT_EQ(with_tiny->strata_merged, 1u);

  std::vector<Stratum> merged = gbstats_count_strata();
  Stratum& largest = merged[4];  // 322 users
  largest.control = {largest.control.n + 3, largest.control.sum + 30.0,
                     largest.control.sum_squares + 310.0};
  largest.treatment = {largest.treatment.n + 1, largest.treatment.sum + 12.0,
                       largest.treatment.sum_squares + 144.0};
  auto by_hand = compare_post_stratified(merged, StratifiedMetric::kMean, 0.05);
  ASSERT_TRUE(by_hand.is_ok());
  EXPECT_DOUBLE_EQ(with_tiny->comparison.absolute.estimate, by_hand->comparison.absolute.estimate);
  EXPECT_DOUBLE_EQ(with_tiny->comparison.absolute.standard_error,
                   by_hand->comparison.absolute.standard_error);
}

TEST(PostStratification, OneStratumIsThePlainWelchComparison) {
  const Stratum only = gbstats_count_strata()[2];
  auto result = compare_post_stratified({only}, StratifiedMetric::kMean, 0.05);
  ASSERT_TRUE(result.is_ok());
  auto plain = compare_means(only.control, only.treatment, 0.05);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(result->strata_used, 1u);
  EXPECT_DOUBLE_EQ(result->comparison.absolute.standard_error, plain->absolute.standard_error);
  EXPECT_DOUBLE_EQ(result->comparison.absolute.ci.lower, plain->absolute.ci.lower);
}

// Seeded simulation, no oracle needed: when the stratum explains the outcome, the
// post-stratified standard error is smaller, and over many A/A replications the 95%
// interval covers the true effect (0) about 95% of the time.
TEST(PostStratification, CutsVarianceAndKeepsCoverageInASeededSimulation) {
  std::mt19937_64 rng(20261202);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double stratum_means[3] = {1.0, 5.0, 12.0};
  int covered = 0, narrower = 0;
  const int replications = 400;
  for (int r = 0; r < replications; ++r) {
    std::vector<Stratum> strata(3);
    for (int u = 0; u < 600; ++u) {
      const int k = uniform(rng) < 0.5 ? 0 : (uniform(rng) < 0.6 ? 1 : 2);
      const double y = stratum_means[k] + noise(rng);
      SampleStats& g = uniform(rng) < 0.5 ? strata[k].control : strata[k].treatment;
      ++g.n;
      g.sum += y;
      g.sum_squares += y * y;
    }
    auto result = compare_post_stratified(strata, StratifiedMetric::kMean, 0.05);
    ASSERT_TRUE(result.is_ok());
    const Interval ci = result->comparison.absolute.ci;
    if (ci.lower <= 0 && 0 <= ci.upper) ++covered;
    if (result->comparison.absolute.standard_error < result->unstratified.absolute.standard_error)
      ++narrower;
  }
  EXPECT_EQ(narrower, replications);
  // 95% coverage; 400 replications: binomial sd ~1.1%, so 90-99% is a wide, safe band.
  EXPECT_GE(covered, replications * 90 / 100);
  EXPECT_LE(covered, replications * 99 / 100);
}

TEST(PostStratification, ProportionsUseTheBernoulliVariance) {
  // Two strata of conversions; each cell's variance is p(1-p), so the absolute effect is the
  // share-weighted difference of conversion rates.
  std::vector<Stratum> strata = {{group(400, 40, 40), group(400, 60, 60)},
                                 {group(100, 50, 50), group(100, 55, 55)}};
  auto result = compare_post_stratified(strata, StratifiedMetric::kProportion, 0.05);
  ASSERT_TRUE(result.is_ok());
  EXPECT_NEAR(result->comparison.absolute.estimate, 0.8 * 0.05 + 0.2 * 0.05, 1e-12);
}

TEST(PostStratification, BadInputNamesTheField) {
  auto field = [](const std::vector<Stratum>& strata, StratifiedMetric metric, double alpha) {
    auto result = compare_post_stratified(strata, metric, alpha);
    return result.is_ok() ? std::string("<ok>") : result.status().field();
  };
  const std::vector<Stratum> good = gbstats_count_strata();
  EXPECT_EQ(field({}, StratifiedMetric::kMean, 0.05), "strata");
  EXPECT_EQ(field(good, StratifiedMetric::kMean, 1.5), "alpha");
  std::vector<Stratum> negative = good;
  negative[1].treatment.n = -1;
  EXPECT_EQ(field(negative, StratifiedMetric::kMean, 0.05), "strata[1].treatment.n");
  std::vector<Stratum> infinite = good;
  infinite[0].control.sum = INFINITY;
  EXPECT_EQ(field(infinite, StratifiedMetric::kMean, 0.05), "strata[0].control.sum");
  std::vector<Stratum> conversions = {{group(10, 11, 11), group(10, 5, 5)}};
  EXPECT_EQ(field(conversions, StratifiedMetric::kProportion, 0.05), "strata[0].control.sum");
  std::vector<Stratum> zero_control = {{group(10, 0, 0), group(10, 5, 5)}};
  EXPECT_EQ(field(zero_control, StratifiedMetric::kMean, 0.05), "control");
}

}  // namespace
}  // namespace fulcrum::stats
