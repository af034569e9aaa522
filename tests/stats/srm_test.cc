#include "stats/srm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "oracle_client.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;

json srm_cases() {
  std::mt19937_64 rng(31337);
  std::uniform_int_distribution<int> groups_dist(2, 5);
  std::uniform_real_distribution<double> weight_dist(0.05, 1), skew_dist(0.97, 1.03);
  json cases = json::array();
  for (int i = 0; i < 200; ++i) {
    const int groups = groups_dist(rng);
    const std::int64_t total = testing::log_uniform_n(rng, 100, 5000000);
    std::vector<double> weights;
    double weight_total = 0;
    for (int g = 0; g < groups; ++g) weight_total += weights.emplace_back(weight_dist(rng));
    std::vector<std::int64_t> observed;
    for (int g = 0; g < groups; ++g) {
      observed.push_back(static_cast<std::int64_t>(
          std::round(static_cast<double>(total) * weights[g] / weight_total * skew_dist(rng))));
    }
    cases.push_back({{"observed", observed}, {"weights", weights}});
  }
  return cases;
}

[[maybe_unused]] const bool kRegistered = testing::register_oracle_cases("srm", srm_cases());

json sequential_srm_cases() {
  std::mt19937_64 rng(4242);
  std::uniform_int_distribution<int> groups_dist(2, 4);
  std::uniform_real_distribution<double> weight_dist(0.1, 1), skew_dist(0.96, 1.04);
  json cases = json::array();
  for (int i = 0; i < 100; ++i) {
    const int groups = groups_dist(rng);
    const std::int64_t total = testing::log_uniform_n(rng, 200, 2000000);
    std::vector<double> weights;
    double weight_total = 0;
    for (int g = 0; g < groups; ++g) weight_total += weights.emplace_back(weight_dist(rng));
    std::vector<std::int64_t> observed;
    for (int g = 0; g < groups; ++g) {
      observed.push_back(static_cast<std::int64_t>(
          std::round(static_cast<double>(total) * weights[g] / weight_total * skew_dist(rng))));
    }
    cases.push_back({{"observed", observed},
                     {"weights", weights},
                     {"concentration", i % 2 == 0 ? kSequentialSrmConcentration : 10.0}});
  }
  return cases;
}

[[maybe_unused]] const bool kSequentialRegistered =
    testing::register_oracle_cases("sequential_srm", sequential_srm_cases());

TEST(SequentialSampleRatioMismatch, MatchesTheDirichletMultinomialBayesFactorFromScipy) {
  const auto& batch = testing::oracle_batch("sequential_srm");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  int flagged = 0;
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.dump());
    auto result = sequential_sample_ratio_mismatch(c["observed"].get<std::vector<std::int64_t>>(),
                                                   c["weights"].get<std::vector<double>>(),
                                                   kSrmThreshold, c["concentration"].get<double>());
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const double log_bf = batch.expected[i]["log_bayes_factor"];
    // lgamma of large arguments loses relative precision in the difference: absolute 1e-6.
    EXPECT_NEAR(result->log_bayes_factor, log_bf, 1e-6 * std::max(1.0, std::abs(log_bf)));
    EXPECT_EQ(result->mismatch, log_bf >= std::log(1 / kSrmThreshold));
    flagged += result->mismatch;
  }
  EXPECT_GT(flagged, 5);
  EXPECT_LT(flagged, 95);
}

TEST(SequentialSampleRatioMismatch, NeedsMoreEvidenceThanTheChiSquareAndRejectsBadInput) {
  // 5,200 / 4,800 of a 50/50 split: chi-square p = 6.3e-5 (scipy), flagged at 0.001; the
  // sequential test's log BF is 5.61 (scipy gammaln), below log(1000) = 6.91: not yet.
  auto fixed = sample_ratio_mismatch({5200, 4800}, {1, 1});
  auto sequential = sequential_sample_ratio_mismatch({5200, 4800}, {1, 1});
  ASSERT_TRUE(fixed.is_ok() && sequential.is_ok());
  EXPECT_NEAR(fixed->p_value, 6.334248366623988e-05, 1e-12);
  EXPECT_TRUE(fixed->mismatch);
  EXPECT_NEAR(sequential->log_bayes_factor, 5.613613411776896, 1e-9);
  EXPECT_FALSE(sequential->mismatch);
  EXPECT_NEAR(sequential->p_value, std::exp(-5.613613411776896), 1e-12);
  // Twice the users at the same share: log BF 13.27, flagged.
  auto twice = sequential_sample_ratio_mismatch({10400, 9600}, {1, 1});
  ASSERT_TRUE(twice.is_ok());
  EXPECT_NEAR(twice->log_bayes_factor, 13.271256716383505, 1e-9);
  EXPECT_TRUE(twice->mismatch);
  EXPECT_EQ(sequential_sample_ratio_mismatch({1, 2}, {1}).status().field(), "allocation");
  EXPECT_EQ(sequential_sample_ratio_mismatch({-1, 2}, {1, 1}).status().field(), "n");
  EXPECT_EQ(sequential_sample_ratio_mismatch({1, 2}, {1, 0}).status().field(), "allocation");
  EXPECT_EQ(sequential_sample_ratio_mismatch({1, 2}, {1, 1}, 0).status().field(), "threshold");
  EXPECT_EQ(sequential_sample_ratio_mismatch({1, 2}, {1, 1}, 0.001, -1).status().field(),
            "concentration");
}

TEST(SampleRatioMismatch, MatchesScipyChisquareOnRandomInputs) {
  const auto& batch = testing::oracle_batch("srm");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  int flagged = 0;
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.dump());
    auto result = sample_ratio_mismatch(c["observed"].get<std::vector<std::int64_t>>(),
                                        c["weights"].get<std::vector<double>>());
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    EXPECT_TRUE(close(result->chi_square, batch.expected[i]["chi_square"]));
    const double p = batch.expected[i]["p_value"];
    if (p > 1e-300) {
      EXPECT_TRUE(close(result->p_value, p));
    }
    EXPECT_EQ(result->mismatch, p < kSrmThreshold);
    flagged += result->mismatch;
  }
  // The skewed cases must exercise both verdicts.
  EXPECT_GT(flagged, 10);
  EXPECT_LT(flagged, 190);
}

TEST(SampleRatioMismatch, FlagsA5050SplitThatCameOut5149) {
  // 10,200 vs 9,800 on a 50/50 allocation: chi2 = 8.0, p = 0.00468 -> not
  // flagged; 51,000 vs 49,000: chi2 = 40, p = 2.5e-10 -> flagged.
  auto mild = sample_ratio_mismatch({10200, 9800}, {0.5, 0.5});
  ASSERT_TRUE(mild.is_ok());
  EXPECT_DOUBLE_EQ(mild->chi_square, 8.0);
  EXPECT_NEAR(mild->p_value, 0.004677734981047, 1e-12);
  EXPECT_FALSE(mild->mismatch);
  auto severe = sample_ratio_mismatch({51000, 49000}, {1, 1});
  ASSERT_TRUE(severe.is_ok());
  EXPECT_TRUE(severe->mismatch);
}

TEST(SampleRatioMismatch, RejectsBadInput) {
  EXPECT_EQ(sample_ratio_mismatch({1, 2, 3}, {1, 1}).status().field(), "allocation");
  EXPECT_EQ(sample_ratio_mismatch({1, 2}, {1, 0}).status().field(), "allocation");
  EXPECT_EQ(sample_ratio_mismatch({1, -2}, {1, 1}).status().field(), "n");
}

}  // namespace
}  // namespace fulcrum::stats
