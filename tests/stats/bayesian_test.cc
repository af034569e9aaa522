#include "stats/bayesian.h"

#include <gtest/gtest.h>

#include <random>

#include "oracle_client.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;

json bayes_cases() {
  std::mt19937_64 rng(555);
  std::uniform_real_distribution<double> se_dist(0.001, 0.3), z_dist(-4, 4), u(0, 1);
  json cases = json::array();
  for (int i = 0; i < 200; ++i) {
    const double se = se_dist(rng);
    cases.push_back({{"estimate", z_dist(rng) * se},
                     {"standard_error", se},
                     {"proper", i % 2 == 1},
                     {"prior_mean", (u(rng) - 0.5) * 0.1},
                     {"prior_variance", 0.01 + u(rng) * 0.2},
                     {"alpha", 0.05}});
  }
  return cases;
}

[[maybe_unused]] const bool kRegistered = testing::register_oracle_cases("bayes", bayes_cases());

TEST(BayesianLift, MatchesScipyTruncatedNormalOnRandomInputs) {
  const auto& batch = testing::oracle_batch("bayes");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.dump());
    GaussianPrior prior{c["proper"], c["prior_mean"], c["prior_variance"]};
    auto result = bayesian_lift(c["estimate"], c["standard_error"], prior, c["alpha"]);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const json& e = batch.expected[i];
    const double sd = result->posterior_sd;
    EXPECT_TRUE(close(result->posterior_mean, e["posterior_mean"], sd));
    EXPECT_TRUE(close(sd, e["posterior_sd"]));
    EXPECT_TRUE(close(result->chance_to_beat_control, e["chance_to_beat_control"]));
    // Losses are judged against the posterior scale: scipy's truncnorm loses
    // relative precision when the truncated side has little mass.
    EXPECT_TRUE(close(result->expected_loss_treatment, e["expected_loss_treatment"], 1e-3 * sd));
    EXPECT_TRUE(close(result->expected_loss_control, e["expected_loss_control"], 1e-3 * sd));
    EXPECT_TRUE(close(result->credible_interval.lower, e["credible_interval"][0], sd));
    EXPECT_TRUE(close(result->credible_interval.upper, e["credible_interval"][1], sd));
  }
}

TEST(BayesianLift, FlatPriorZeroEffectIsACoinFlip) {
  auto result = bayesian_lift(0, 0.02, GaussianPrior{});
  ASSERT_TRUE(result.is_ok());
  EXPECT_DOUBLE_EQ(result->chance_to_beat_control, 0.5);
  // E[max(0, -X)] for X ~ N(0, s^2) is s / sqrt(2 pi).
  EXPECT_NEAR(result->expected_loss_treatment, 0.02 / std::sqrt(2 * M_PI), 1e-15);
  EXPECT_DOUBLE_EQ(result->expected_loss_treatment, result->expected_loss_control);
}

TEST(BayesianLift, ProperPriorShrinksTowardsItsMean) {
  GaussianPrior prior{true, 0, 0.01};
  auto flat = bayesian_lift(0.1, 0.1, GaussianPrior{});
  auto shrunk = bayesian_lift(0.1, 0.1, prior);
  ASSERT_TRUE(flat.is_ok() && shrunk.is_ok());
  EXPECT_DOUBLE_EQ(shrunk->posterior_mean, 0.05);  // equal precisions: halfway
  EXPECT_LT(shrunk->chance_to_beat_control, flat->chance_to_beat_control);
  // Loss identity: E[max(0,X)] - E[max(0,-X)] = E[X].
  EXPECT_NEAR(flat->expected_loss_control - flat->expected_loss_treatment, 0.1, 1e-15);
}

TEST(BayesianLift, RejectsDegenerateInput) {
  EXPECT_EQ(bayesian_lift(0.1, 0, GaussianPrior{}).status().field(), "standard_error");
  EXPECT_EQ(bayesian_lift(0.1, 0.1, GaussianPrior{true, 0, 0}).status().field(), "prior.variance");
}

}  // namespace
}  // namespace fulcrum::stats
