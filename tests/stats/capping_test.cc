// Capping (stats/capping.h) and quantile metrics (stats/quantile.h): numpy/scipy on random
// heavy-tailed inputs, gbstats' published quantile values, the analysis wiring (capped and
// uncapped side by side), field-naming errors, and a seeded simulation of capping's bias.
#include "stats/capping.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "oracle_client.h"
#include "stats/analysis.h"
#include "stats/analysis_json.h"
#include "stats/quantile.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;

// Revenue-like values: most users 0, the rest lognormal with a heavy tail.
std::vector<double> revenue(std::mt19937_64& rng, int n, double scale, double zero_share = 0.6) {
  std::bernoulli_distribution pays(1 - zero_share);
  std::lognormal_distribution<double> amount(3, 1.5);
  std::vector<double> values(n);
  for (double& v : values) v = pays(rng) ? scale * amount(rng) : 0;
  return values;
}

json capping_cases() {
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int> n(50, 800);
  std::uniform_real_distribution<double> level(0.8, 0.999);
  json cases = json::array();
  for (int i = 0; i < 12; ++i) {
    cases.push_back({{"control", revenue(rng, n(rng), 1)},
                     {"treatment", revenue(rng, n(rng), 1.1)},
                     {"level", level(rng)},
                     {"ignore_zeros", i % 2 == 1}});
  }
  return cases;
}
const bool kCappingRegistered = testing::register_oracle_cases("capping", capping_cases());

TEST(Capping, PercentileCapMatchesNumpyAndTheTestMatchesScipy) {
  const auto& batch = testing::oracle_batch("capping");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    const json& want = batch.expected[i];
    CapSpec spec{CapKind::kPercentile, c["level"].get<double>(), c["ignore_zeros"].get<bool>()};
    auto capped = cap_groups(
        {c["control"].get<std::vector<double>>(), c["treatment"].get<std::vector<double>>()}, spec);
    ASSERT_TRUE(capped.is_ok());
    EXPECT_TRUE(close(capped->cap, want["cap"].get<double>())) << "case " << i;
    EXPECT_TRUE(close(capped->capped[0].sum, want["control_sum"].get<double>())) << "case " << i;
    EXPECT_TRUE(close(capped->capped[0].sum_squares, want["control_sum_squares"].get<double>()));
    EXPECT_TRUE(close(capped->capped[1].sum, want["treatment_sum"].get<double>()));
    EXPECT_EQ(capped->users_capped[0], want["users_capped"].get<std::int64_t>());
    auto comparison = compare_means(capped->capped[0], capped->capped[1], 0.05);
    ASSERT_TRUE(comparison.is_ok());
    // Sums of squares of heavy-tailed values lose a few digits in var = (ss - s^2/n)/(n-1).
    EXPECT_NEAR(comparison->absolute.p_value, want["p_value"].get<double>(),
                1e-7 * std::max(1e-3, want["p_value"].get<double>()))
        << "case " << i;
  }
}

TEST(Capping, AbsoluteCapReplacesLargerValues) {
  auto capped = cap_groups({{1, 5, 10}, {20, 0}}, {CapKind::kAbsolute, 8, false});
  ASSERT_TRUE(capped.is_ok());
  EXPECT_EQ(capped->cap, 8);
  EXPECT_EQ(capped->capped[0].sum, 1 + 5 + 8);
  EXPECT_EQ(capped->capped[0].sum_squares, 1 + 25 + 64);
  EXPECT_EQ(capped->uncapped[0].sum, 16);
  EXPECT_EQ(capped->capped[1].sum, 8);
  EXPECT_EQ(capped->users_capped[0], 1);
  EXPECT_EQ(capped->users_capped[1], 1);
}

TEST(Capping, AnalysisShowsCappedAndUncappedSideBySide) {
  std::mt19937_64 rng(7);
  json doc = {{"metrics",
               {{{"name", "revenue"},
                 {"type", "continuous"},
                 {"capping", {{"type", "percentile"}, {"value", 0.99}}},
                 {"groups",
                  {{"control", {{"values", revenue(rng, 3000, 1)}}},
                   {"variant", {{"values", revenue(rng, 3000, 1.05)}}}}}}}}};
  auto input = analysis_input_from_json(doc);
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  const MetricResult& metric = output->metrics[0];
  ASSERT_TRUE(metric.capping.has_value());
  ASSERT_EQ(metric.capping->uncapped_groups.size(), 2u);
  // Capping removes variance: the capped per-user variance is smaller in both groups.
  for (size_t g = 0; g < 2; ++g) {
    EXPECT_LT(metric.groups[g].variance, metric.capping->uncapped_groups[g].variance);
    EXPECT_LE(metric.groups[g].mean, metric.capping->uncapped_groups[g].mean);
  }
  EXPECT_EQ(output->exposures[0], 3000);
  const json out = analysis_output_to_json(*output);
  EXPECT_EQ(out["metrics"][0]["capping"]["type"], "percentile");
  EXPECT_GT(out["metrics"][0]["capping"]["users_capped"]["control"].get<int>(), 0);
  EXPECT_TRUE(out["metrics"][0]["capping"]["uncapped_groups"]["variant"].contains("lift"));
}

std::string analysis_error_field(const json& doc) {
  auto input = analysis_input_from_json(doc);
  if (!input.is_ok()) return input.status().field();
  auto output = analyze(*input);
  return output.is_ok() ? "(accepted)" : output.status().field();
}

TEST(Capping, BadSettingsNameTheField) {
  const json values = {{"control", {{"values", {1, 2, 3}}}}, {"variant", {{"values", {2, 3, 4}}}}};
  const json sums = {{"control", {{"n", 10}, {"sum", 3}}}, {"variant", {{"n", 10}, {"sum", 4}}}};
  auto doc = [](json metric) { return json{{"metrics", json::array({metric})}}; };
  EXPECT_EQ(analysis_error_field(doc({{"name", "r"},
                                      {"type", "continuous"},
                                      {"capping", {{"type", "percentile"}, {"value", 1.5}}},
                                      {"groups", values}})),
            "metrics[0].capping.value");
  EXPECT_EQ(analysis_error_field(doc({{"name", "r"},
                                      {"type", "binomial"},
                                      {"capping", {{"type", "absolute"}, {"value", 10}}},
                                      {"groups", sums}})),
            "metrics[0].groups.control.values");
  EXPECT_EQ(analysis_error_field(doc({{"name", "r"},
                                      {"type", "continuous"},
                                      {"capping", {{"type", "absolute"}, {"value", 10}}},
                                      {"groups",
                                       {{"control", {{"n", 10}, {"sum", 3}, {"sum_squares", 9}}},
                                        {"variant", {{"values", {2, 3, 4}}}}}}})),
            "metrics[0].groups.control.values");
  EXPECT_EQ(analysis_error_field(doc({{"name", "r"},
                                      {"type", "continuous"},
                                      {"capping", {{"type", "winsor"}, {"value", 0.9}}},
                                      {"groups", values}})),
            "metrics[0].capping.type");
  EXPECT_EQ(analysis_error_field(doc({{"name", "r"},
                                      {"type", "continuous"},
                                      {"groups",
                                       {{"control", {{"values", {1, 2}}, {"n", 2}}},
                                        {"variant", {{"values", {2, 3, 4}}}}}}})),
            "metrics[0].groups.control.n");
}

// Seeded simulation: with a p99 cap computed per analysis, (a) under no effect the capped
// difference is unbiased and the test keeps its size; (b) with a +10% multiplicative effect the
// capped lift estimates the capped population's lift (a known shrinkage toward 0 from the
// uncapped +10%), with a much smaller standard error.
TEST(Capping, SimulatedBiasAndVarianceOfAPercentileCap) {
  std::mt19937_64 rng(31337);
  const int trials = 300, n = 2000;
  const CapSpec spec{CapKind::kPercentile, 0.99, false};
  double null_sum = 0, null_sum_sq = 0;
  int null_rejections = 0;
  double capped_lift_sum = 0, uncapped_lift_sum = 0, capped_se_sum = 0, uncapped_se_sum = 0;
  for (int t = 0; t < trials; ++t) {
    auto null_groups = cap_groups({revenue(rng, n, 1), revenue(rng, n, 1)}, spec);
    ASSERT_TRUE(null_groups.is_ok());
    auto null_test = compare_means(null_groups->capped[0], null_groups->capped[1], 0.05);
    ASSERT_TRUE(null_test.is_ok());
    null_sum += null_test->absolute.estimate;
    null_sum_sq += null_test->absolute.estimate * null_test->absolute.estimate;
    null_rejections += null_test->absolute.p_value < 0.05;

    auto effect_groups = cap_groups({revenue(rng, n, 1), revenue(rng, n, 1.1)}, spec);
    ASSERT_TRUE(effect_groups.is_ok());
    auto capped = compare_means(effect_groups->capped[0], effect_groups->capped[1], 0.05);
    auto uncapped = compare_means(effect_groups->uncapped[0], effect_groups->uncapped[1], 0.05);
    ASSERT_TRUE(capped.is_ok() && uncapped.is_ok());
    capped_lift_sum += capped->relative->estimate;
    uncapped_lift_sum += uncapped->relative->estimate;
    capped_se_sum += capped->relative->standard_error;
    uncapped_se_sum += uncapped->relative->standard_error;
  }
  // (a) mean capped difference within 4 standard errors of 0; size within 3 MC sd of 5%.
  const double null_mean = null_sum / trials;
  const double null_sd = std::sqrt(null_sum_sq / trials - null_mean * null_mean);
  EXPECT_LT(std::abs(null_mean), 4 * null_sd / std::sqrt(trials));
  EXPECT_LE(null_rejections, trials * 0.05 + 3 * std::sqrt(trials * 0.05 * 0.95));

  // (b) the capped population's true lift, from one large sample with the cap at its p99.
  std::vector<double> big_control = revenue(rng, 400000, 1),
                      big_treatment = revenue(rng, 400000, 1.1);
  auto truth = cap_groups({big_control, big_treatment}, spec);
  ASSERT_TRUE(truth.is_ok());
  const double capped_truth = truth->capped[1].sum / truth->capped[0].sum - 1;
  const double capped_mean_lift = capped_lift_sum / trials;
  const double uncapped_mean_lift = uncapped_lift_sum / trials;
  std::printf(
      "capping p99: mean capped lift %.4f (capped-population truth %.4f), mean uncapped "
      "lift %.4f (truth 0.1000); mean se capped %.4f vs uncapped %.4f\n",
      capped_mean_lift, capped_truth, uncapped_mean_lift, capped_se_sum / trials,
      uncapped_se_sum / trials);
  EXPECT_LT(capped_truth, 0.1);  // capping shrinks a multiplicative lift toward 0
  EXPECT_GT(capped_truth, 0.0);
  EXPECT_NEAR(capped_mean_lift, capped_truth, 4 * (capped_se_sum / trials) / std::sqrt(trials));
  EXPECT_LT(capped_se_sum, 0.8 * uncapped_se_sum);
}

// --- quantile metrics -----------------------------------------------------------------------

json quantile_cases() {
  std::mt19937_64 rng(4242);
  std::uniform_int_distribution<int> n(60, 5000);
  const double levels[] = {0.5, 0.9, 0.99, 0.25, 0.75, 0.95};
  json cases = json::array();
  for (int i = 0; i < 12; ++i) {
    std::lognormal_distribution<double> value(1, 1);
    std::vector<double> values(n(rng));
    for (double& v : values) v = value(rng);
    cases.push_back({{"values", values}, {"level", levels[i % 6]}});
  }
  return cases;
}
const bool kQuantileRegistered = testing::register_oracle_cases("quantile", quantile_cases());

TEST(Quantile, SummaryMatchesNumpyQuantilesAtGrowthbookBoundLevels) {
  const auto& batch = testing::oracle_batch("quantile");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    const json& want = batch.expected[i];
    auto summary =
        summarize_quantile(c["values"].get<std::vector<double>>(), c["level"].get<double>());
    ASSERT_TRUE(summary.is_ok());
    EXPECT_EQ(summary->n_star, want["n_star"].get<std::int64_t>()) << "case " << i;
    EXPECT_TRUE(close(summary->quantile, want["quantile"].get<double>())) << "case " << i;
    EXPECT_TRUE(close(summary->lower, want["lower"].get<double>())) << "case " << i;
    EXPECT_TRUE(close(summary->upper, want["upper"].get<double>())) << "case " << i;
  }
}

// gbstats packages/stats/tests/bayesian/test_tests.py, TestEffectBayesianABTest
// (QuantileStatistic nu = 0.9, n = n_star = 11054 / 10861): the improper-flat-prior absolute
// result and the relative one (prior variance 1e6, which moves it by < 1e-10).
TEST(Quantile, VarianceAndIntervalMatchGbstatsPublishedValues) {
  QuantileSummary control{
      11054, 11054, 0.9, 7.157987489967789, 7.098780136176828, 7.217194843758751};
  QuantileSummary treatment{
      10861, 10861, 0.9, 7.694499927525767, 7.64180598628119, 7.747193868770344};
  auto c = quantile_estimate(control);
  auto t = quantile_estimate(treatment);
  ASSERT_TRUE(c.is_ok() && t.is_ok());
  auto comparison = compare_estimates(*c, *t, 0.05, TestDistribution::kStudentT);
  ASSERT_TRUE(comparison.is_ok());
  auto absolute = bayesian_lift(comparison->absolute.estimate, comparison->absolute.standard_error,
                                GaussianPrior{}, 0.05);
  ASSERT_TRUE(absolute.is_ok());
  EXPECT_TRUE(close(absolute->posterior_mean, 0.5365124375579775));
  EXPECT_TRUE(close(absolute->credible_interval.lower, 0.4572559589115422, 0.16));
  EXPECT_TRUE(close(absolute->credible_interval.upper, 0.6157689162044128, 0.16));
  auto relative = bayesian_lift(comparison->relative->estimate,
                                comparison->relative->standard_error, GaussianPrior{}, 0.05);
  ASSERT_TRUE(relative.is_ok());
  EXPECT_NEAR(relative->posterior_mean, 0.07495297222736319, 1e-9);
  EXPECT_NEAR(relative->credible_interval.lower, 0.06341005842481906, 1e-9);
  EXPECT_NEAR(relative->credible_interval.upper, 0.08649588602990732, 1e-9);
}

// gbstats QuantileStatistic._has_zero_variance: a zero spread between the bound quantiles
// (ties around the quantile, common for integer-valued metrics) makes the test undefined only
// below 1000 values; from 1000 on, variance is floored at 1e-5 and the test runs.
TEST(Quantile, TiedValuesAroundTheQuantileAreRefusedOnlyBelowAThousand) {
  std::vector<double> tied(998, 3.0);  // with the 8: 999 values
  tied.push_back(8.0);
  auto small = summarize_quantile(tied, 0.5);
  ASSERT_TRUE(small.is_ok());
  EXPECT_EQ(small->lower, small->upper);
  EXPECT_FALSE(quantile_estimate(*small).is_ok());
  tied.push_back(3.0);  // 1000 values
  auto large = summarize_quantile(tied, 0.5);
  ASSERT_TRUE(large.is_ok());
  auto estimate = quantile_estimate(*large);
  ASSERT_TRUE(estimate.is_ok()) << estimate.status().message();
  EXPECT_DOUBLE_EQ(estimate->mean, 3.0);
  EXPECT_DOUBLE_EQ(estimate->variance, 1e-5);
  EXPECT_EQ(estimate->n, 1000);
}

TEST(Quantile, AnalysisOfAP90MetricAndItsErrors) {
  std::mt19937_64 rng(90);
  std::lognormal_distribution<double> control_time(1, 0.5), variant_time(1.1, 0.5);
  std::vector<double> control(2000), variant(2000);
  for (double& v : control) v = control_time(rng);
  for (double& v : variant) v = variant_time(rng);
  json metric = {
      {"name", "load_time_p90"},
      {"type", "quantile"},
      {"quantile", 0.9},
      {"higher_is_better", false},
      {"groups", {{"control", {{"values", control}}}, {"variant", {{"values", variant}}}}}};
  auto input = analysis_input_from_json({{"metrics", {metric}}});
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  const GroupResult& v = output->metrics[0].groups[1];
  // exp(1.1 + 0.5 z_0.9) / exp(1 + 0.5 z_0.9) - 1 = e^0.1 - 1 = 10.5%: slower, so stop.
  EXPECT_NEAR(v.vs_control->relative->estimate, std::exp(0.1) - 1, 0.05);
  EXPECT_TRUE(v.vs_control->significant);
  EXPECT_EQ(output->recommendation.action, Action::kStop);
  EXPECT_EQ(analysis_output_to_json(*output)["metrics"][0]["quantile"], 0.9);

  metric["quantile"] = 1.0;
  EXPECT_EQ(analysis_error_field({{"metrics", {metric}}}), "metrics[0].quantile");
  metric["quantile"] = 0.0;
  EXPECT_EQ(analysis_error_field({{"metrics", {metric}}}), "metrics[0].quantile");
  metric.erase("quantile");
  EXPECT_EQ(analysis_error_field({{"metrics", {metric}}}), "metrics[0].quantile");
  metric["quantile"] = 0.9;
  metric["groups"]["control"] = {{"n", 10}, {"sum", 1}, {"sum_squares", 1}};
  EXPECT_EQ(analysis_error_field({{"metrics", {metric}}}), "metrics[0].groups.control.values");
}

}  // namespace
}  // namespace fulcrum::stats
