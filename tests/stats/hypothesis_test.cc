#include "stats/hypothesis.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "oracle_client.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;
using testing::log_uniform_n;
using testing::oracle_batch;
using testing::register_oracle_cases;

json sample_json(const SampleStats& s) {
  return {{"n", s.n}, {"sum", s.sum}, {"sum_squares", s.sum_squares}};
}

SampleStats sample_from_moments(std::int64_t n, double mean, double sd) {
  const double nd = static_cast<double>(n);
  return {n, nd * mean, (nd - 1) * sd * sd + nd * mean * mean};
}

SampleStats sample_of(const json& j) {
  return {j["n"].get<std::int64_t>(), j["sum"].get<double>(),
          j.contains("sum_squares") ? j["sum_squares"].get<double>() : j["sum"].get<double>()};
}

RatioStats ratio_of(const json& j) {
  return {j["n"].get<std::int64_t>(),
          j["numerator_sum"].get<double>(),
          j["numerator_sum_squares"].get<double>(),
          j["denominator_sum"].get<double>(),
          j["denominator_sum_squares"].get<double>(),
          j["cross_sum"].get<double>()};
}

json welch_cases() {
  std::mt19937_64 rng(20240101);
  std::uniform_real_distribution<double> mean_dist(-50, 200), sd_dist(0.1, 40),
      alpha_dist(0.01, 0.2);
  std::normal_distribution<double> z(0, 2.5);
  json cases = json::array();
  for (int i = 0; i < 200; ++i) {
    const std::int64_t n0 = log_uniform_n(rng, 2, 200000), n1 = log_uniform_n(rng, 2, 200000);
    const double m0 = mean_dist(rng), sd0 = sd_dist(rng), sd1 = sd_dist(rng);
    const double m1 = m0 + z(rng) * std::sqrt(sd0 * sd0 / n0 + sd1 * sd1 / n1);
    cases.push_back({{"alpha", alpha_dist(rng)},
                     {"control", sample_json(sample_from_moments(n0, m0, sd0))},
                     {"treatment", sample_json(sample_from_moments(n1, m1, sd1))}});
  }
  return cases;
}

json proportion_cases() {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> rate_dist(0.005, 0.95), alpha_dist(0.01, 0.2);
  std::normal_distribution<double> z(0, 2.5);
  json cases = json::array();
  while (cases.size() < 200) {
    const std::int64_t n0 = log_uniform_n(rng, 30, 2000000), n1 = log_uniform_n(rng, 30, 2000000);
    const double p0 = rate_dist(rng);
    const double p1 = p0 + z(rng) * std::sqrt(p0 * (1 - p0) * (1.0 / n0 + 1.0 / n1));
    const double x0 = std::round(p0 * n0), x1 = std::round(p1 * n1);
    if (x0 <= 0 || x1 <= 0 || x0 >= n0 || x1 >= n1) continue;
    cases.push_back({{"alpha", alpha_dist(rng)},
                     {"control", {{"n", n0}, {"sum", x0}}},
                     {"treatment", {{"n", n1}, {"sum", x1}}}});
  }
  return cases;
}

json ratio_cases() {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> mean_dist(1, 50), sd_dist(0.2, 20), corr_dist(-0.9, 0.9);
  std::normal_distribution<double> z(0, 2.5);
  auto make = [&](std::int64_t n, double mx, double my, double sx, double sy, double rho) {
    const double nd = static_cast<double>(n);
    return json{{"n", n},
                {"numerator_sum", nd * mx},
                {"numerator_sum_squares", (nd - 1) * sx * sx + nd * mx * mx},
                {"denominator_sum", nd * my},
                {"denominator_sum_squares", (nd - 1) * sy * sy + nd * my * my},
                {"cross_sum", (nd - 1) * rho * sx * sy + nd * mx * my}};
  };
  json cases = json::array();
  for (int i = 0; i < 200; ++i) {
    const std::int64_t n0 = log_uniform_n(rng, 10, 500000), n1 = log_uniform_n(rng, 10, 500000);
    const double mx = mean_dist(rng), my = mean_dist(rng), sx = sd_dist(rng), sy = sd_dist(rng);
    const double rho = corr_dist(rng);
    const double shift = z(rng) * (sx / my) * std::sqrt(1.0 / n0 + 1.0 / n1);
    cases.push_back({{"alpha", 0.05},
                     {"control", make(n0, mx, my, sx, sy, rho)},
                     {"treatment", make(n1, mx + shift * my, my, sx, sy, rho)}});
  }
  return cases;
}

[[maybe_unused]] const bool kRegistered =
    register_oracle_cases("welch", welch_cases()) &&
    register_oracle_cases("proportions", proportion_cases()) &&
    register_oracle_cases("ratio", ratio_cases());

void expect_matches(const EffectTest& actual, const json& e, bool check_statistic) {
  const double width = actual.ci.upper - actual.ci.lower;
  if (check_statistic) {
    EXPECT_TRUE(close(actual.statistic, e["statistic"]));
  }
  EXPECT_TRUE(close(actual.p_value, e["p_value"]));
  EXPECT_TRUE(close(actual.ci.lower, e["ci"][0], width));
  EXPECT_TRUE(close(actual.ci.upper, e["ci"][1], width));
}

void expect_relative_matches(const Comparison& actual, const json& e) {
  ASSERT_TRUE(actual.relative.has_value());
  const EffectTest& rel = *actual.relative;
  EXPECT_TRUE(close(rel.estimate, e["estimate"], rel.standard_error));
  EXPECT_TRUE(close(rel.standard_error, e["se"]));
  expect_matches(rel, e, false);
}

TEST(WelchTest, MatchesScipyOnRandomInputs) {
  const auto& batch = oracle_batch("welch");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.dump());
    auto result = compare_means(sample_of(c["control"]), sample_of(c["treatment"]), c["alpha"]);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    expect_matches(result->absolute, batch.expected[i], true);
    EXPECT_TRUE(close(result->absolute.df, batch.expected[i]["df"]));
    expect_relative_matches(*result, batch.expected[i]["relative"]);
  }
}

TEST(TwoProportionTest, MatchesStatsmodelsOnRandomInputs) {
  const auto& batch = oracle_batch("proportions");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.dump());
    auto result =
        compare_proportions(sample_of(c["control"]), sample_of(c["treatment"]), c["alpha"]);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    EXPECT_TRUE(std::isinf(result->absolute.df));
    expect_matches(result->absolute, batch.expected[i], true);
    expect_relative_matches(*result, batch.expected[i]["relative"]);
  }
}

TEST(RatioTest, MatchesDeltaMethodOracleOnRandomInputs) {
  const auto& batch = oracle_batch("ratio");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.dump());
    auto result = compare_ratios(ratio_of(c["control"]), ratio_of(c["treatment"]), c["alpha"]);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const json& e = batch.expected[i];
    EXPECT_TRUE(close(result->absolute.estimate, e["estimate"], result->absolute.standard_error));
    EXPECT_TRUE(close(result->absolute.df, e["df"]));
    expect_matches(result->absolute, e, false);
    expect_relative_matches(*result, e["relative"]);
  }
}

// Published example: R's documented `t.test(extra ~ group, data = sleep)`
// (Student's sleep data, Welch by default): t = -1.8608, df = 17.776, p-value =
// 0.07939, 95 percent CI -3.3654832 0.2054832 for group 1 - group 2.
TEST(WelchTest, ReproducesPublishedExample) {
  const std::vector<double> group1 = {0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0};
  const std::vector<double> group2 = {1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4};
  auto stats_of = [](const std::vector<double>& v) {
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
  EXPECT_NEAR(result->absolute.statistic, 0.03 / std::sqrt(pooled * (1 - pooled) * 0.002), 1e-12);
  EXPECT_NEAR(result->absolute.standard_error, std::sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000),
              1e-15);
  EXPECT_LT(result->absolute.p_value, 0.05);
  EXPECT_GT(result->absolute.ci.lower, 0);
}

TEST(TwoProportionTest, ZeroConversionsEverywhereIsNoEvidence) {
  auto result = compare_proportions({500, 0, 0}, {500, 0, 0}, 0.05);
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ(result->absolute.p_value, 1);
  EXPECT_FALSE(result->relative.has_value());  // control rate 0: relative lift undefined
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
  auto zero_denominator = compare_ratios({10, 5, 5, 0, 0, 0}, {10, 5, 5, 3, 3, 2}, 0.05);
  ASSERT_FALSE(zero_denominator.is_ok());
  EXPECT_EQ(zero_denominator.status().field(), "control.denominator_sum");
}

}  // namespace
}  // namespace fulcrum::stats
