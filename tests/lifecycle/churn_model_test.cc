#include "lifecycle/churn_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace fulcrum {
namespace {

constexpr UnixSeconds kNow = 1'700'000'000;

TEST(RocAuc, MatchesHandComputedExamples) {
  // The scikit-learn roc_auc_score documentation example: 0.75.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  // Ties count one half.
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5}, {0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.1, 0.2}, {1, 0, 0}), 1.0);
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));
}

TEST(LogisticIrls, SatisfiesPenalisedScoreEquations) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int n = 400;
  Eigen::MatrixXd x(n, 2);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    x(i, 0) = normal(rng) * 3 + 10;
    x(i, 1) = normal(rng);
    double eta = -0.5 + 0.8 * (x(i, 0) - 10) / 3 - 1.2 * x(i, 1);
    y[i] = std::uniform_real_distribution<double>(0, 1)(rng) < 1 / (1 + std::exp(-eta)) ? 1 : 0;
  }
  const double l2 = 2.0;
  auto model = fit_logistic_irls(x, y, l2);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  EXPECT_TRUE(model->converged);
  // At the optimum: sum(y - p) = 0 (unpenalised intercept) and X_std'(y - p) = l2 * beta.
  Eigen::VectorXd p = model->predict_all(x);
  EXPECT_NEAR((y - p).sum(), 0.0, 1e-8);
  for (int j = 0; j < 2; ++j) {
    double score = 0;
    for (int i = 0; i < n; ++i) {
      score += (x(i, j) - model->mean[j]) / model->scale[j] * (y[i] - p[i]);
    }
    EXPECT_NEAR(score, l2 * model->coefficients[j], 1e-7);
  }
  EXPECT_GT(model->coefficients[0], 0.3);
  EXPECT_LT(model->coefficients[1], -0.5);
  EXPECT_NEAR(model->predict(x.row(3).transpose()), p[3], 1e-12);
}

TEST(LogisticIrls, RejectsBadInput) {
  Eigen::MatrixXd x(2, 1);
  x << 1, 2;
  Eigen::VectorXd y(2);
  y << 0, 2;
  EXPECT_EQ(fit_logistic_irls(x, y, 1.0).status().field(), "labels");
  EXPECT_EQ(fit_logistic_irls(Eigen::MatrixXd(0, 1), Eigen::VectorXd(0), 1.0).status().field(),
            "features");
}

// Synthetic history: churners fade out over a few weeks before going silent at a random
// day; retained users keep a steady rate. The model must rank them on a later holdout.
UserActivity synthetic_history(int users, int days, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  UserActivity activity(kNow, days);
  for (int u = 0; u < users; ++u) {
    std::string id = "u" + std::to_string(u);
    activity.add_user(id, u % 4 == 0 ? Tier::kPlus : Tier::kFree, kNow - 400 * kSecondsPerDay);
    double rate = 0.4 + 0.5 * uniform(rng);
    bool churner = uniform(rng) < 0.35;
    int leave_day = churner ? 40 + static_cast<int>(uniform(rng) * (days - 40)) : days + 1;
    for (int d = 0; d < days; ++d) {
      double day_rate = rate;
      if (d >= leave_day) {
        day_rate = 0;
      } else if (d >= leave_day - 21) {
        day_rate = rate * (leave_day - d) / 21.0;  // fading before leaving
      }
      if (uniform(rng) < day_rate) activity.record_session(id, activity.day_start(d) + 600);
    }
  }
  activity.finish();
  return activity;
}

TEST(ChurnModel, TimeSplitHoldoutRanksFadingUsers) {
  ChurnModelConfig config;
  UserActivity activity = synthetic_history(1500, config.history_days(), 11);
  auto evaluation = evaluate_churn_model(activity, config);
  ASSERT_TRUE(evaluation.is_ok()) << evaluation.status().to_string();
  EXPECT_GT(evaluation->train_rows, 500);
  EXPECT_GT(evaluation->test_rows, 300);
  EXPECT_GT(evaluation->test_churn_rate, 0.05);
  EXPECT_TRUE(evaluation->converged);
  EXPECT_GT(evaluation->test_auc, 0.8);
  auto json = evaluation->to_json();
  EXPECT_EQ(json["coefficients"].size(), churn_feature_names().size() + 1);
}

TEST(ChurnModel, ShortHistoryIsAnError) {
  ChurnModelConfig config;
  UserActivity activity(kNow, 30);
  EXPECT_EQ(evaluate_churn_model(activity, config).status().field(), "history_days");
}

TEST(ChurnModel, ScoresOnlyCurrentlyActiveUsers) {
  ChurnModelConfig config;
  UserActivity activity = synthetic_history(600, config.history_days(), 5);
  auto scored = score_churn_risk(activity, config);
  ASSERT_TRUE(scored.is_ok());
  ASSERT_FALSE(scored->empty());
  for (const auto& [user, probability] : *scored) {
    EXPECT_GE(activity.last_active_day(user, activity.days()), activity.days() - config.label_days);
    EXPECT_GE(probability, 0.0);
    EXPECT_LE(probability, 1.0);
  }
}

}  // namespace
}  // namespace fulcrum
