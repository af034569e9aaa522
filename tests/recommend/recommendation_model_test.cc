// The trained recommender on the planted synthetic history: beats most-popular on a
// time split, produces the contract's fields, calibrated confidences and sane types.
#include "recommend/recommendation_model.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "recommend/evaluation.h"
#include "recommend/synthetic.h"

namespace fulcrum {
namespace {

class RecommendationModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SyntheticUsageOptions options;
    options.users = 1500;
    history_ = new EventBatch(make_synthetic_usage(options));
    usage_ = new UsageHistory(UsageHistory::from_events(*history_));
    now_ = options.start + options.days * kSecondsPerDay;
    auto model = RecommendationModel::train(*usage_, now_);
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    model_ = new RecommendationModel(std::move(model).value());
  }
  static void TearDownTestSuite() {
    delete model_;
    delete usage_;
    delete history_;
  }
  static const User& user_with(Tier tier) {
    for (const auto& u : history_->users) {
      if (u.tier == tier) return u;
    }
    return history_->users.front();
  }
  static EventBatch* history_;
  static UsageHistory* usage_;
  static RecommendationModel* model_;
  static UnixSeconds now_;
};
EventBatch* RecommendationModelTest::history_ = nullptr;
UsageHistory* RecommendationModelTest::usage_ = nullptr;
RecommendationModel* RecommendationModelTest::model_ = nullptr;
UnixSeconds RecommendationModelTest::now_ = 0;

TEST_F(RecommendationModelTest, BeatsMostPopularOnTimeSplit) {
  auto evaluation = evaluate_recommendations(*usage_, now_);
  ASSERT_TRUE(evaluation.is_ok()) << evaluation.status().to_string();
  EXPECT_GT(evaluation->users_evaluated, 100u);
  EXPECT_GT(evaluation->model.ndcg, evaluation->most_popular.ndcg * 1.1);
  EXPECT_GT(evaluation->model.precision, evaluation->most_popular.precision);
  EXPECT_GT(evaluation->model.recall, evaluation->most_popular.recall);
}

TEST_F(RecommendationModelTest, RecommendationsCarryContractFieldsInPriorityOrder) {
  std::set<std::string> types_seen;
  int users_with_recommendations = 0;
  for (int i = 0; i < 200; ++i) {
    const User& user = history_->users[i];
    auto recs = model_->recommend(user.user_id);
    ASSERT_TRUE(recs.is_ok());
    if (!recs->empty()) ++users_with_recommendations;
    std::set<std::string> features;
    for (std::size_t k = 0; k < recs->size(); ++k) {
      const auto& r = (*recs)[k];
      EXPECT_EQ(r.priority, static_cast<int>(k) + 1);
      EXPECT_GE(r.confidence_score, 0.0);
      EXPECT_LE(r.confidence_score, 1.0);
      EXPECT_FALSE(r.reasoning.empty());
      EXPECT_EQ(r.recommendation_id.rfind("rec_", 0), 0u);
      EXPECT_TRUE(features.insert(r.feature_name).second) << "feature recommended twice";
      if (k > 0) {
        EXPECT_LE(r.expected_value, (*recs)[k - 1].expected_value);
      }
      types_seen.insert(recommendation_type_name(r.recommendation_type));
      auto json = r.to_json();
      for (const char* field :
           {"recommendation_id", "user_id", "feature_name", "recommendation_type",
            "confidence_score", "expected_value", "priority", "reasoning"}) {
        EXPECT_TRUE(json.contains(field)) << field;
      }
      EXPECT_TRUE(json["expected_value"].is_number());
    }
    EXPECT_LE(recs->size(), 10u);
  }
  EXPECT_GT(users_with_recommendations, 150);
  for (const char* type : {"feature_discovery", "upgrade_promotion", "usage_optimization",
                           "personalization", "retention"}) {
    EXPECT_TRUE(types_seen.count(type)) << type << " never produced";
  }
}

TEST_F(RecommendationModelTest, UpgradePromotionOnlyAboveTierAndNeverForPremium) {
  std::map<std::string, Tier> required;
  for (const auto& f : history_->features) required[f.name] = f.required_tier;
  for (int i = 0; i < 300; ++i) {
    const User& user = history_->users[i];
    auto recs = model_->recommend(user.user_id);
    ASSERT_TRUE(recs.is_ok());
    for (const auto& r : *recs) {
      if (r.recommendation_type == RecommendationType::kUpgradePromotion) {
        EXPECT_NE(user.tier, Tier::kPremium);
        EXPECT_GT(required[r.feature_name], user.tier);
      } else {
        EXPECT_LE(required[r.feature_name], user.tier) << r.feature_name;
      }
    }
  }
}

TEST_F(RecommendationModelTest, ExpectedValueIsConfidenceTimesFeatureValue) {
  std::map<std::string, std::int64_t> value;
  for (const auto& f : history_->features) value[f.name] = f.monthly_revenue_value_minor;
  auto recs = model_->recommend(user_with(Tier::kFree).user_id);
  ASSERT_TRUE(recs.is_ok());
  ASSERT_FALSE(recs->empty());
  for (const auto& r : *recs) {
    EXPECT_NEAR(static_cast<double>(r.expected_value.minor_units),
                r.confidence_score * static_cast<double>(value[r.feature_name]), 0.5);
  }
}

TEST_F(RecommendationModelTest, DiscoveryCalibrationMatchesLaterAdoption) {
  // Calibrated on [now-2w, now-w) -> [now-w, now); here we check the same map on an older
  // split: average predicted adoption vs observed adoption over all discovery candidates.
  const auto& calibration = model_->calibration(RecommendationType::kFeatureDiscovery);
  EXPECT_GT(calibration.sample_size(), 1000u);
  RecommendOptions options;
  const UsageHistory& index = *usage_;
  UnixSeconds at = now_ - 2 * options.window_seconds;
  auto core = build_model_core(index, at, options, model_->ease_lambda());
  ASSERT_TRUE(core.is_ok());
  UsageSnapshot next =
      UsageSnapshot::build(index, at + options.window_seconds, options.window_seconds);
  double predicted = 0, observed = 0, count = 0;
  for (int u = 0; u < index.user_count(); ++u) {
    if (index.signup_at(u) >= at) continue;
    Eigen::RowVectorXd scores = core->snapshot.used.row(u).cast<double>() * core->weights;
    for (int f = 0; f < scores.size(); ++f) {
      bool used = core->snapshot.used(u, f) > 0;
      if (used || index.features()[f].required_tier > core->snapshot.tiers[u]) continue;
      predicted += calibration(scores[f] + 1e-6 * core->popularity[f]);
      observed += next.recent(u, f) > 0 ? 1 : 0;
      count += 1;
    }
  }
  ASSERT_GT(count, 500);
  EXPECT_NEAR(predicted / count, observed / count, 0.05);
}

TEST_F(RecommendationModelTest, TheSerializedFormDecodesToTheSameSnapshotAndAnswers) {
  const std::string payload = model_->serialize();
  auto decoded = RecommendationModel::deserialize(payload);
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  const UsageSnapshot& a = model_->snapshot();
  const UsageSnapshot& b = decoded->snapshot();
  EXPECT_EQ(a.used, b.used);
  EXPECT_EQ(a.used_before_recent, b.used_before_recent);
  EXPECT_EQ(a.recent, b.recent);
  EXPECT_EQ(a.previous, b.previous);
  EXPECT_EQ(a.paywall_recent, b.paywall_recent);
  EXPECT_EQ(a.activity_recent, b.activity_recent);
  EXPECT_EQ(a.tiers, b.tiers);
  ASSERT_EQ(decoded->user_ids(), model_->user_ids());
  // The sparse cells really are sparse here (each synthetic user uses a few features), and
  // a decoded model answers every user as the trained one does.
  const auto dense_bytes = static_cast<std::size_t>(a.used.size()) * 8;
  EXPECT_LT(payload.size(), dense_bytes);
  for (std::size_t u = 0; u < model_->user_ids().size(); u += 97) {
    const std::string& id = model_->user_ids()[u];
    auto want = model_->recommend(id);
    auto got = decoded->recommend(id);
    ASSERT_TRUE(want.is_ok() && got.is_ok()) << id;
    ASSERT_EQ(want->size(), got->size()) << id;
    for (std::size_t i = 0; i < want->size(); ++i) {
      EXPECT_EQ((*want)[i].to_json(), (*got)[i].to_json()) << id;
    }
  }
  EXPECT_EQ(decoded->serialize(), payload);
  for (std::size_t cut : {std::size_t{1}, payload.size() / 3, payload.size() / 2,
                          payload.size() - 1}) {
    EXPECT_FALSE(RecommendationModel::deserialize(payload.substr(0, cut)).is_ok()) << cut;
  }
}

TEST_F(RecommendationModelTest, UsersAreFoundByIdInAnyOrder) {
  // Lookup is a binary search over the sorted ids: every trained user is found, and ids
  // that sort between, before or after them are not.
  for (std::size_t u = 0; u < model_->user_ids().size(); u += 31) {
    EXPECT_TRUE(model_->recommend(model_->user_ids()[u]).is_ok()) << model_->user_ids()[u];
  }
  for (const char* id : {"", "!", "~~~~", "u"}) {
    auto missing = model_->recommend(id);
    ASSERT_FALSE(missing.is_ok()) << id;
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  }
}

TEST_F(RecommendationModelTest, UnknownUserIsNotFoundAndColdStartHasDiscovery) {
  auto missing = model_->recommend("nobody");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  User newcomer;
  newcomer.user_id = "newcomer";
  newcomer.tier = Tier::kFree;
  auto recs = model_->recommend_cold_start(newcomer);
  ASSERT_FALSE(recs.empty());
  for (const auto& r : recs) {
    EXPECT_EQ(r.user_id, "newcomer");
    EXPECT_TRUE(r.recommendation_type == RecommendationType::kFeatureDiscovery ||
                r.recommendation_type == RecommendationType::kUpgradePromotion);
  }
}

TEST(RecommendationModel, RejectsBadOptionsAndEmptyFeatures) {
  EventBatch empty;
  auto model = RecommendationModel::train(UsageHistory::from_events(empty), 1000);
  ASSERT_FALSE(model.is_ok());
  EXPECT_EQ(model.status().code(), StatusCode::kFailedPrecondition);
  SyntheticUsageOptions synthetic;
  synthetic.users = 50;
  EventBatch history = make_synthetic_usage(synthetic);
  RecommendOptions options;
  options.ease_lambda = -1;
  auto bad = RecommendationModel::train(UsageHistory::from_events(history),
                                        synthetic.start + 100 * kSecondsPerDay, options);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "lambda");
  for (std::vector<double> grid : {std::vector<double>{}, std::vector<double>{5, -1}}) {
    RecommendOptions bad_grid;
    bad_grid.ease_lambda_grid = grid;
    auto refused = RecommendationModel::train(UsageHistory::from_events(history),
                                              synthetic.start + 100 * kSecondsPerDay, bad_grid);
    ASSERT_FALSE(refused.is_ok());
    EXPECT_EQ(refused.status().field(), "ease_lambda_grid");
  }
}

// Many features and few users per feature: lambda = 20 is weak next to the Gram diagonal
// (tens of users per feature), so EASE fits the noise of who happened to co-adopt what, and
// a stronger lambda ranks the next adoptions better. Users belong to one of 10 clusters of
// 10 features (30% adoption inside the cluster, 3% outside, plus a popularity term); each
// adoption is one usage event on a uniform day of 90.
EventBatch make_sparse_adoptions(UnixSeconds start, std::uint64_t seed) {
  constexpr int kUsers = 500, kFeatures = 100, kClusters = 10, kDays = 90;
  EventBatch batch;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int f = 0; f < kFeatures; ++f) {
    Feature feature;
    feature.name = fmt::format("feature_{:03d}", f);
    batch.features.push_back(feature);
  }
  for (int u = 0; u < kUsers; ++u) {
    User user;
    user.user_id = fmt::format("user_{:04d}", u);
    user.signup_at = start;
    const int cluster = static_cast<int>(unit(rng) * kClusters);
    for (int f = 0; f < kFeatures; ++f) {
      double p = (f % kClusters == cluster ? 0.3 : 0.03) + 0.15 / std::sqrt(f + 1.0);
      if (unit(rng) >= p) continue;
      const int day = static_cast<int>(unit(rng) * kDays);
      batch.feature_usage.push_back(
          {user.user_id, batch.features[f].name, start + day * kSecondsPerDay + 3600, 1});
    }
    batch.users.push_back(std::move(user));
  }
  return batch;
}

TEST(EaseLambdaValidation, PicksAStrongerLambdaThanTwentyAndImprovesHeldOutNdcg) {
  const UnixSeconds start = 1'700'006'400;  // a midnight
  const UnixSeconds now = start + 90 * kSecondsPerDay;
  const UsageHistory history = UsageHistory::from_events(make_sparse_adoptions(start, 7));
  RecommendOptions options;
  options.window_seconds = 14 * kSecondsPerDay;
  const int k = 10;
  auto evaluation = evaluate_recommendations(history, now, options, k);
  ASSERT_TRUE(evaluation.is_ok()) << evaluation.status().to_string();
  const auto& lambda = evaluation->lambda;
  ASSERT_TRUE(lambda.validated);
  EXPECT_EQ(lambda.k, 10);
  EXPECT_EQ(lambda.train_until, now - 28 * kSecondsPerDay);
  EXPECT_EQ(lambda.validate_until, now - 14 * kSecondsPerDay);
  EXPECT_GT(lambda.users_validated, 100u);
  ASSERT_EQ(lambda.grid.size(), default_ease_lambda_grid().size());
  // The chosen value is the grid's best validation score.
  double best = 0;
  for (const auto& point : lambda.grid) best = std::max(best, point.ndcg);
  for (const auto& point : lambda.grid) {
    if (point.lambda == lambda.chosen) {
      EXPECT_EQ(point.ndcg, best);
    }
  }
  EXPECT_GT(lambda.chosen, kFixedEaseLambda);

  // The truth on the test window: the best fixed lambda there is also above 20, and the
  // validated model beats the fixed one on the adoptions it never saw.
  double best_test_lambda = 0, best_test_ndcg = -1;
  for (double value : default_ease_lambda_grid()) {
    RecommendOptions fixed = options;
    fixed.ease_lambda = value;
    auto at_value = evaluate_recommendations(history, now, fixed, k);
    ASSERT_TRUE(at_value.is_ok());
    EXPECT_FALSE(at_value->lambda.validated);
    EXPECT_EQ(at_value->lambda.chosen, value);
    if (value == kFixedEaseLambda) {
      EXPECT_DOUBLE_EQ(at_value->model.ndcg, evaluation->fixed_lambda_model.ndcg);
    }
    if (value == lambda.chosen) {
      EXPECT_DOUBLE_EQ(at_value->model.ndcg, evaluation->model.ndcg);
    }
    if (at_value->model.ndcg > best_test_ndcg) {
      best_test_ndcg = at_value->model.ndcg;
      best_test_lambda = value;
    }
  }
  EXPECT_GT(best_test_lambda, kFixedEaseLambda);
  EXPECT_GT(evaluation->model.ndcg, evaluation->fixed_lambda_model.ndcg * 1.05);
  const auto json = evaluation->to_json();
  EXPECT_EQ(json["ease_lambda"]["chosen"], lambda.chosen);
  EXPECT_EQ(json["ease_lambda"]["grid"].size(), lambda.grid.size());
  EXPECT_EQ(json["fixed_lambda_model"]["lambda"], kFixedEaseLambda);
}

// The served model fits the validated lambda (on the window before `now`).
TEST_F(RecommendationModelTest, TrainsWithTheValidatedLambda) {
  const auto& validation = model_->lambda_validation();
  EXPECT_TRUE(validation.validated);
  EXPECT_EQ(validation.validate_until, now_);
  EXPECT_EQ(validation.train_until, now_ - RecommendOptions{}.window_seconds);
  RecommendOptions options;
  options.ease_lambda = model_->ease_lambda();
  auto refit = RecommendationModel::train(*usage_, now_, options);
  ASSERT_TRUE(refit.is_ok());
  EXPECT_FALSE(refit->lambda_validation().validated);
  EXPECT_TRUE(refit->ease_weights().isApprox(model_->ease_weights()));
}

}  // namespace
}  // namespace fulcrum
