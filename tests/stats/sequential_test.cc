#include "stats/sequential.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "oracle_client.h"
#include "stats/hypothesis.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;

json sequential_cases() {
  std::mt19937_64 rng(8080);
  std::uniform_real_distribution<double> se_dist(0.001, 2), z_dist(-6, 6), alpha_dist(0.01, 0.2),
      tuning_dist(100, 50000);
  json cases = json::array();
  for (int i = 0; i < 200; ++i) {
    const double se = se_dist(rng);
    cases.push_back({{"estimate", z_dist(rng) * se},
                     {"standard_error", se},
                     {"total_n", testing::log_uniform_n(rng, 20, 1e7)},
                     {"alpha", alpha_dist(rng)},
                     {"tuning", tuning_dist(rng)}});
  }
  return cases;
}

[[maybe_unused]] const bool kRegistered =
    testing::register_oracle_cases("sequential", sequential_cases());

TEST(SequentialTest, MatchesReferenceFormulaOnRandomInputs) {
  const auto& batch = testing::oracle_batch("sequential");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.dump());
    EffectTest fixed;
    fixed.estimate = c["estimate"];
    fixed.standard_error = c["standard_error"];
    auto result = sequential_test(fixed, c["total_n"], c["alpha"], c["tuning"]);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const double width = result->ci.upper - result->ci.lower;
    EXPECT_TRUE(close(result->ci.lower, batch.expected[i]["ci"][0], width));
    EXPECT_TRUE(close(result->ci.upper, batch.expected[i]["ci"][1], width));
    const double p = batch.expected[i]["p_value"];
    if (p > 1e-300) {
      EXPECT_TRUE(close(result->p_value, p));
    }
    // The p-value and the interval tell the same story.
    const bool excludes_zero = result->ci.lower > 0 || result->ci.upper < 0;
    EXPECT_EQ(excludes_zero, result->p_value < c["alpha"].get<double>());
  }
}

TEST(SequentialTest, IsWiderThanTheFixedHorizonInterval) {
  EffectTest fixed;
  fixed.estimate = 0.01;
  fixed.standard_error = 0.004;
  fixed.ci = {0.01 - 1.96 * 0.004, 0.01 + 1.96 * 0.004};
  auto result = sequential_test(fixed, 20000, 0.05);
  ASSERT_TRUE(result.is_ok());
  EXPECT_LT(result->ci.lower, fixed.ci.lower);
  EXPECT_GT(result->ci.upper, fixed.ci.upper);
}

// Peeking at an A/A test every day: naive fixed-horizon tests stop on the first
// p < alpha and so reject far more often than alpha; the confidence sequence
// stays within alpha.
TEST(SequentialTest, DailyPeekingAtAAExperimentsKeepsFalsePositivesBelowAlpha) {
  constexpr int kExperiments = 2000;
  constexpr int kLooks = 30;
  constexpr int kDailyUsersPerGroup = 150;
  constexpr double kRate = 0.1;
  constexpr double kAlpha = 0.05;
  std::mt19937_64 rng(123456789);
  std::binomial_distribution<int> daily_conversions(kDailyUsersPerGroup, kRate);
  int naive_rejections = 0, sequential_rejections = 0;
  for (int experiment = 0; experiment < kExperiments; ++experiment) {
    SampleStats control, treatment;
    bool naive = false, sequential = false;
    for (int look = 0; look < kLooks; ++look) {
      control.n += kDailyUsersPerGroup;
      treatment.n += kDailyUsersPerGroup;
      control.sum += daily_conversions(rng);
      treatment.sum += daily_conversions(rng);
      control.sum_squares = control.sum;
      treatment.sum_squares = treatment.sum;
      auto fixed = compare_proportions(control, treatment, kAlpha);
      ASSERT_TRUE(fixed.is_ok());
      naive = naive || fixed->absolute.p_value < kAlpha;
      auto always_valid = sequential_test(fixed->absolute, control.n + treatment.n, kAlpha);
      ASSERT_TRUE(always_valid.is_ok());
      sequential = sequential || always_valid->p_value < kAlpha;
    }
    naive_rejections += naive;
    sequential_rejections += sequential;
  }
  const double naive_rate = static_cast<double>(naive_rejections) / kExperiments;
  const double sequential_rate = static_cast<double>(sequential_rejections) / kExperiments;
  RecordProperty("naive_false_positive_rate", std::to_string(naive_rate));
  RecordProperty("sequential_false_positive_rate", std::to_string(sequential_rate));
  EXPECT_LE(sequential_rate, kAlpha) << "sequential " << sequential_rate;
  EXPECT_GT(naive_rate, 2 * kAlpha) << "naive " << naive_rate;
  std::printf("A/A peeking x%d: naive FPR %.4f, sequential FPR %.4f\n", kLooks, naive_rate,
              sequential_rate);
}

TEST(SequentialTest, RejectsBadParameters) {
  EffectTest fixed;
  fixed.standard_error = 1;
  EXPECT_EQ(sequential_test(fixed, 100, 0.05, 0).status().field(), "sequential_tuning");
  EXPECT_EQ(sequential_test(fixed, 0, 0.05).status().field(), "n");
  EXPECT_EQ(sequential_test(fixed, 100, 0).status().field(), "alpha");
}

}  // namespace
}  // namespace fulcrum::stats
