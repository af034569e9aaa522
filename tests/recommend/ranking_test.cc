// Calibration, EASE and ranking metrics: the pure building blocks of the recommender.
#include <gtest/gtest.h>

#include <cmath>

#include "recommend/calibration.h"
#include "recommend/ease.h"
#include "recommend/ranking_metrics.h"

namespace fulcrum {
namespace {

TEST(RankingMetrics, HandComputedPrecisionRecallNdcg) {
  // Items 0..5; relevant = {1, 4, 5}; ranking puts 1 first and 4 third.
  std::vector<bool> relevant = {false, true, false, false, true, true};
  RankingScores s = score_ranking({1, 0, 4, 2, 3}, relevant, 5);
  EXPECT_DOUBLE_EQ(s.precision, 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.recall, 2.0 / 3.0);
  double dcg = 1.0 + 1.0 / std::log2(4.0);
  double ideal = 1.0 + 1.0 / std::log2(3.0) + 1.0 / std::log2(4.0);
  EXPECT_NEAR(s.ndcg, dcg / ideal, 1e-12);
  RankingScores perfect = score_ranking({5, 4, 1, 0}, relevant, 5);
  EXPECT_NEAR(perfect.ndcg, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(score_ranking({0, 2}, relevant, 5).ndcg, 0.0);
}

TEST(Ease, MatchesClosedFormWithExplicitInverse) {
  Eigen::MatrixXd x(6, 4);
  x << 1, 1, 0, 0,  //
      1, 1, 1, 0,   //
      0, 1, 1, 0,   //
      0, 0, 1, 1,   //
      1, 0, 0, 1,   //
      1, 1, 0, 1;
  Eigen::MatrixXd gram = gram_matrix(x);
  EXPECT_TRUE(gram.isApprox(x.transpose() * x));
  const double lambda = 2.0;
  auto b = fit_ease(gram, lambda);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  Eigen::MatrixXd p = (gram + lambda * Eigen::MatrixXd::Identity(4, 4)).inverse();
  // Steck 2019 eq. 8: B = I - P diag(1/diag(P)).
  Eigen::MatrixXd expected =
      Eigen::MatrixXd::Identity(4, 4) - p * p.diagonal().cwiseInverse().asDiagonal();
  EXPECT_TRUE(b->isApprox(expected, 1e-10));
  for (int j = 0; j < 4; ++j) EXPECT_NEAR((*b)(j, j), 0.0, 1e-12);
  // B solves the constrained ridge problem: the gradient (G + lambda I)B - G is zero
  // off the diagonal (the diagonal carries the Lagrange multipliers).
  Eigen::MatrixXd gradient = (gram + lambda * Eigen::MatrixXd::Identity(4, 4)) * *b - gram;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      if (i != j) {
        EXPECT_NEAR(gradient(i, j), 0.0, 1e-9);
      }
    }
  }
}

TEST(Ease, RejectsNonPositiveLambda) {
  Eigen::MatrixXd gram = Eigen::MatrixXd::Identity(3, 3);
  auto b = fit_ease(gram, 0.0);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().field(), "lambda");
}

TEST(MonotoneCalibration, PoolsViolatorsAndShrinksTowardBaseRate) {
  // Scores 1..6 with outcomes 0 0 1 0 1 1: PAV pools (3,4) into one step of rate 1/2.
  std::vector<double> scores = {1, 2, 3, 4, 5, 6};
  std::vector<double> outcomes = {0, 0, 1, 0, 1, 1};
  auto c = MonotoneCalibration::fit(scores, outcomes, /*prior_weight=*/0.0);
  EXPECT_TRUE(c.increasing());
  EXPECT_DOUBLE_EQ(c(1.5), 0.0);
  EXPECT_DOUBLE_EQ(c(3.0), 0.5);
  EXPECT_DOUBLE_EQ(c(4.0), 0.5);
  EXPECT_DOUBLE_EQ(c(6.0), 1.0);
  EXPECT_DOUBLE_EQ(c(100.0), 1.0);
  EXPECT_DOUBLE_EQ(c(-5.0), 0.0);
  EXPECT_DOUBLE_EQ(c.base_rate(), 0.5);
  auto shrunk = MonotoneCalibration::fit(scores, outcomes, /*prior_weight=*/2.0);
  EXPECT_GT(shrunk(1.0), 0.0);
  EXPECT_LT(shrunk(6.0), 1.0);
  for (double s = 0; s < 7; s += 0.25) EXPECT_LE(shrunk(s), shrunk(s + 0.25));
}

TEST(MonotoneCalibration, DetectsDecreasingRelation) {
  std::vector<double> scores, outcomes;
  for (int i = 0; i < 200; ++i) {
    scores.push_back(i);
    outcomes.push_back(i < 100 ? (i % 4 != 0) : (i % 5 == 0));
  }
  // No shrinkage here: isotonic steps then preserve each half's mean.
  auto c = MonotoneCalibration::fit(scores, outcomes, /*prior_weight=*/0.0);
  EXPECT_FALSE(c.increasing());
  EXPECT_GT(c(10), c(150));
  // Averaged over each half, the step function reproduces the halves' rates.
  double low_half = 0, high_half = 0;
  for (int i = 0; i < 100; ++i) {
    low_half += c(i) / 100;
    high_half += c(i + 100) / 100;
  }
  EXPECT_NEAR(low_half, 0.75, 0.05);
  EXPECT_NEAR(high_half, 0.2, 0.05);
}

TEST(MonotoneCalibration, EmptyDataUsesFallback) {
  auto c = MonotoneCalibration::fit({}, {}, 2.0, 0.125);
  EXPECT_DOUBLE_EQ(c(3.0), 0.125);
  EXPECT_EQ(c.sample_size(), 0u);
}

}  // namespace
}  // namespace fulcrum
