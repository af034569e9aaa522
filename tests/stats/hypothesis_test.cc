#include "stats/hypothesis.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "oracle_client.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;
using testing::run_oracle;

json sample_json(const SampleStats &s) {
  return {{"n", s.n}, {"sum", s.sum}, {"sum_squares", s.sum_squares}};
}

SampleStats sample_from_moments(std::int64_t n, double mean, double sd) {
  const double nd = static_cast<double>(n);
  return {n, nd * mean, (nd - 1) * sd * sd + nd * mean * mean};
}

std::int64_t log_uniform_n(std::mt19937_64 &rng, double low, double high) {
  std::uniform_real_distribution<double> u(std::log(low), std::log(high));
  return static_cast<std::int64_t>(std::exp(u(rng)));
}

TEST(WelchTest, MatchesScipyOnRandomInputs) {
  std::mt19937_64 rng(20240101);
  std::uniform_real_distribution<double> mean_dist(-50, 200), sd_dist(0.1, 40),
      alpha_dist(0.01, 0.2);
  std::normal_distribution<double> z(0, 2.5);
  std::vector<std::pair<SampleStats, SampleStats>> inputs;
  std::vector<double> alphas;
  json cases = json::array();
  for (int i = 0; i < 200; ++i) {
    const std::int64_t n0 = log_uniform_n(rng, 2, 200000),
                       n1 = log_uniform_n(rng, 2, 200000);
    const double m0 = mean_dist(rng), sd0 = sd_dist(rng), sd1 = sd_dist(rng);
    const double m1 = m0 + z(rng) * std::sqrt(sd0 * sd0 / n0 + sd1 * sd1 / n1);
    inputs.push_back(
        {sample_from_moments(n0, m0, sd0), sample_from_moments(n1, m1, sd1)});
    alphas.push_back(alpha_dist(rng));
    cases.push_back({{"alpha", alphas.back()},
                     {"control", sample_json(inputs.back().first)},
                     {"treatment", sample_json(inputs.back().second)}});
  }
  const json expected = run_oracle("welch", cases);
  ASSERT_FALSE(expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + cases[i].dump());
    auto result = compare_means(inputs[i].first, inputs[i].second, alphas[i]);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const EffectTest &abs = result->absolute;
    const json &e = expected[i];
    const double width = abs.ci.upper - abs.ci.lower;
    EXPECT_TRUE(close(abs.statistic, e["statistic"]));
    EXPECT_TRUE(close(abs.p_value, e["p_value"]));
    EXPECT_TRUE(close(abs.df, e["df"]));
    EXPECT_TRUE(close(abs.ci.lower, e["ci"][0], width));
    EXPECT_TRUE(close(abs.ci.upper, e["ci"][1], width));
    ASSERT_TRUE(result->relative.has_value());
    const EffectTest &rel = *result->relative;
    const double rel_width = rel.ci.upper - rel.ci.lower;
    EXPECT_TRUE(
        close(rel.estimate, e["relative"]["estimate"], rel.standard_error));
    EXPECT_TRUE(close(rel.standard_error, e["relative"]["se"]));
    EXPECT_TRUE(close(rel.p_value, e["relative"]["p_value"]));
    EXPECT_TRUE(close(rel.ci.lower, e["relative"]["ci"][0], rel_width));
    EXPECT_TRUE(close(rel.ci.upper, e["relative"]["ci"][1], rel_width));
  }
}

TEST(TwoProportionTest, MatchesStatsmodelsOnRandomInputs) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> rate_dist(0.005, 0.95),
      alpha_dist(0.01, 0.2);
  std::normal_distribution<double> z(0, 2.5);
  std::vector<std::pair<SampleStats, SampleStats>> inputs;
  std::vector<double> alphas;
  json cases = json::array();
  while (inputs.size() < 200) {
    const std::int64_t n0 = log_uniform_n(rng, 30, 2000000),
                       n1 = log_uniform_n(rng, 30, 2000000);
    const double p0 = rate_dist(rng);
    const double p1 =
        p0 + z(rng) * std::sqrt(p0 * (1 - p0) * (1.0 / n0 + 1.0 / n1));
    const double x0 = std::round(p0 * n0), x1 = std::round(p1 * n1);
    if (x0 <= 0 || x1 <= 0 || x0 >= n0 || x1 >= n1)
      continue;
    inputs.push_back({{n0, x0, x0}, {n1, x1, x1}});
    alphas.push_back(alpha_dist(rng));
    cases.push_back({{"alpha", alphas.back()},
                     {"control", {{"n", n0}, {"sum", x0}}},
                     {"treatment", {{"n", n1}, {"sum", x1}}}});
  }
  const json expected = run_oracle("proportions", cases);
  ASSERT_FALSE(expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + cases[i].dump());
    auto result =
        compare_proportions(inputs[i].first, inputs[i].second, alphas[i]);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const EffectTest &abs = result->absolute;
    const json &e = expected[i];
    const double width = abs.ci.upper - abs.ci.lower;
    EXPECT_TRUE(std::isinf(abs.df));
    EXPECT_TRUE(close(abs.statistic, e["statistic"]));
    EXPECT_TRUE(close(abs.p_value, e["p_value"]));
    EXPECT_TRUE(close(abs.ci.lower, e["ci"][0], width));
    EXPECT_TRUE(close(abs.ci.upper, e["ci"][1], width));
    const EffectTest &rel = *result->relative;
    const double rel_width = rel.ci.upper - rel.ci.lower;
    EXPECT_TRUE(close(rel.standard_error, e["relative"]["se"]));
    EXPECT_TRUE(close(rel.p_value, e["relative"]["p_value"]));
    EXPECT_TRUE(close(rel.ci.lower, e["relative"]["ci"][0], rel_width));
    EXPECT_TRUE(close(rel.ci.upper, e["relative"]["ci"][1], rel_width));
  }
}

TEST(RatioTest, MatchesDeltaMethodOracleOnRandomInputs) {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> mean_dist(1, 50), sd_dist(0.2, 20),
      corr_dist(-0.9, 0.9);
  std::normal_distribution<double> z(0, 2.5);
  std::vector<std::pair<RatioStats, RatioStats>> inputs;
  json cases = json::array();
  auto make = [&](std::int64_t n, double mx, double my, double sx, double sy,
                  double rho) {
    const double nd = static_cast<double>(n);
    return RatioStats{n,
                      nd * mx,
                      (nd - 1) * sx * sx + nd * mx * mx,
                      nd * my,
                      (nd - 1) * sy * sy + nd * my * my,
                      (nd - 1) * rho * sx * sy + nd * mx * my};
  };
  auto to_json = [](const RatioStats &r) {
    return json{{"n", r.n},
                {"numerator_sum", r.numerator_sum},
                {"numerator_sum_squares", r.numerator_sum_squares},
                {"denominator_sum", r.denominator_sum},
                {"denominator_sum_squares", r.denominator_sum_squares},
                {"cross_sum", r.cross_sum}};
  };
  for (int i = 0; i < 200; ++i) {
    const std::int64_t n0 = log_uniform_n(rng, 10, 500000),
                       n1 = log_uniform_n(rng, 10, 500000);
    const double mx = mean_dist(rng), my = mean_dist(rng), sx = sd_dist(rng),
                 sy = sd_dist(rng);
    const double rho = corr_dist(rng);
    RatioStats control = make(n0, mx, my, sx, sy, rho);
    const double shift = z(rng) * (sx / my) * std::sqrt(1.0 / n0 + 1.0 / n1);
    RatioStats treatment = make(n1, mx + shift * my, my, sx, sy, rho);
    inputs.push_back({control, treatment});
    cases.push_back({{"alpha", 0.05},
                     {"control", to_json(control)},
                     {"treatment", to_json(treatment)}});
  }
  const json expected = run_oracle("ratio", cases);
  ASSERT_FALSE(expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    auto result = compare_ratios(inputs[i].first, inputs[i].second, 0.05);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const EffectTest &abs = result->absolute;
    const json &e = expected[i];
    const double width = abs.ci.upper - abs.ci.lower;
    EXPECT_TRUE(close(abs.estimate, e["estimate"], abs.standard_error));
    EXPECT_TRUE(close(abs.df, e["df"]));
    EXPECT_TRUE(close(abs.p_value, e["p_value"]));
    EXPECT_TRUE(close(abs.ci.lower, e["ci"][0], width));
    EXPECT_TRUE(close(abs.ci.upper, e["ci"][1], width));
    const EffectTest &rel = *result->relative;
    const double rel_width = rel.ci.upper - rel.ci.lower;
    EXPECT_TRUE(close(rel.p_value, e["relative"]["p_value"]));
    EXPECT_TRUE(close(rel.ci.lower, e["relative"]["ci"][0], rel_width));
    EXPECT_TRUE(close(rel.ci.upper, e["relative"]["ci"][1], rel_width));
  }
}

// Published example: R's documented `t.test(extra ~ group, data = sleep)`
// (Student's sleep data, Welch by default): t = -1.8608, df = 17.776, p-value =
// 0.07939, 95 percent CI -3.3654832 0.2054832 for group 1 - group 2.
TEST(WelchTest, ReproducesPublishedExample) {
  const std::vector<double> group1 = {0.7, -1.6, -0.2, -1.2, -0.1,
                                      3.4, 3.7,  0.8,  0.0,  2.0};
  const std::vector<double> group2 = {1.9, 0.8, 1.1, 0.1, -0.1,
                                      4.4, 5.5, 1.6, 4.6, 3.4};
  auto stats_of = [](const std::vector<double> &v) {
    SampleStats s{static_cast<std::int64_t>(v.size()), 0, 0};
    for (double value : v) {
      s.sum += value;
      s.sum_squares += value * value;
    }
    return s;
  };
  auto result = compare_means(stats_of(group2), stats_of(group1), 0.05);
  ASSERT_TRUE(result.is_ok());
  EXPECT_NEAR(result->absolute.statistic, -1.8608, 5e-5);
  EXPECT_NEAR(result->absolute.df, 17.776, 5e-4);
  EXPECT_NEAR(result->absolute.p_value, 0.07939, 5e-6);
  EXPECT_NEAR(result->absolute.ci.lower, -3.3654832, 5e-8);
  EXPECT_NEAR(result->absolute.ci.upper, 0.2054832, 5e-8);
}

TEST(TwoProportionTest, PooledPValueDiffersFromUnpooledInterval) {
  // 100/1000 vs 130/1000: pooled z = 2.0986, unpooled z = 2.0937 (hand
  // computed).
  auto result = compare_proportions({1000, 100, 100}, {1000, 130, 130}, 0.05);
  ASSERT_TRUE(result.is_ok());
  const double pooled = 0.115;
  EXPECT_NEAR(result->absolute.statistic,
              0.03 / std::sqrt(pooled * (1 - pooled) * 0.002), 1e-12);
  EXPECT_NEAR(result->absolute.standard_error,
              std::sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000), 1e-15);
  EXPECT_LT(result->absolute.p_value, 0.05);
  EXPECT_GT(result->absolute.ci.lower, 0);
}

TEST(TwoProportionTest, ZeroConversionsEverywhereIsNoEvidence) {
  auto result = compare_proportions({500, 0, 0}, {500, 0, 0}, 0.05);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ(result->absolute.p_value, 1);
  EXPECT_FALSE(
      result->relative.has_value()); // control rate 0: relative lift undefined
}

TEST(HypothesisErrors, NameTheBadField) {
  auto small = compare_means({1, 1, 1}, {10, 10, 20}, 0.05);
  ASSERT_FALSE(small.is_ok());
  EXPECT_EQ(small.status().field(), "control.n");
  auto too_many = compare_proportions({10, 3, 3}, {10, 11, 11}, 0.05);
  ASSERT_FALSE(too_many.is_ok());
  EXPECT_EQ(too_many.status().field(), "treatment.sum");
  auto bad_alpha = compare_means({10, 10, 20}, {10, 10, 20}, 1.5);
  ASSERT_FALSE(bad_alpha.is_ok());
  EXPECT_EQ(bad_alpha.status().field(), "alpha");
  auto bad_squares = compare_means({10, 100, 5}, {10, 10, 20}, 0.05);
  ASSERT_FALSE(bad_squares.is_ok());
  EXPECT_EQ(bad_squares.status().field(), "control.sum_squares");
  auto zero_denominator =
      compare_ratios({10, 5, 5, 0, 0, 0}, {10, 5, 5, 3, 3, 2}, 0.05);
  ASSERT_FALSE(zero_denominator.is_ok());
  EXPECT_EQ(zero_denominator.status().field(), "control.denominator_sum");
}

} // namespace
} // namespace fulcrum::stats
