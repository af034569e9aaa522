// Personalized feature recommendations: a RecommendationModel is trained once from the
// activity history (EASE item-item weights over the user x feature usage matrix, peer
// usage levels, retention lift per feature, and one calibration per recommendation type
// fitted on a time-split holdout) and then serves one user in microseconds.
//
// The five types (api-contract.md): feature_discovery (unused features at the user's tier
// that users with similar usage adopt), upgrade_promotion (unused features above a
// free/plus user's tier), usage_optimization (features used less than before or below
// peers), personalization (the feature that dominates the user's activity, to pin), and
// retention (for users whose activity halved: unused features whose users stay active).
// confidence_score is the calibrated probability that the recommendation is acted on
// (adopted, resumed, kept using), measured as the share of the same candidates one window
// earlier whose outcome happened in the following window. expected_value = confidence x
// the feature's monthly money value; priority ranks by expected value (1 = first).
#pragma once

#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/money.h"
#include "core/status.h"
#include "recommend/calibration.h"
#include "recommend/ease.h"
#include "store/model.h"
#include "usage/usage_history.h"

namespace fulcrum {

enum class RecommendationType {
  kFeatureDiscovery = 0,
  kUpgradePromotion = 1,
  kUsageOptimization = 2,
  kPersonalization = 3,
  kRetention = 4,
};
constexpr int kRecommendationTypeCount = 5;
const char* recommendation_type_name(RecommendationType type);

struct FeatureRecommendation {
  std::string recommendation_id;  // deterministic: same model, user, feature, type -> same id
  std::string user_id;
  std::string feature_name;
  RecommendationType recommendation_type = RecommendationType::kFeatureDiscovery;
  double confidence_score = 0;  // calibrated probability in [0, 1]
  Money expected_value;         // confidence x monthly value of the feature
  int priority = 0;             // 1 = highest expected value
  std::vector<std::string> reasoning;

  nlohmann::json to_json() const;
};

struct RecommendOptions {
  double ease_lambda = 20.0;                         // EASE L2 strength
  UnixSeconds window_seconds = 28 * kSecondsPerDay;  // recent window and holdout horizon
  int max_per_type = 3;
  int max_total = 10;
};

// Per-user usage state at one instant, as dense users x features matrices (row-major so
// one user's row is contiguous). Pure data; built from the usage rollups: windows are whole
// UTC days ending at analysis_end(at), and `at` is stored rounded down to that midnight.
struct UsageSnapshot {
  using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  UnixSeconds at = 0;
  UnixSeconds window = 0;
  RowMatrixD used;            // 1 when the user used the feature before `at`
  RowMatrixF recent;          // usage count in [at - window, at)
  RowMatrixF previous;        // usage count in [at - 2 window, at - window)
  RowMatrixF paywall_recent;  // paywall hits in [at - window, at)
  Eigen::Matrix<UnixSeconds, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> first_use;
  std::vector<float> activity_recent, activity_previous;  // sessions + usage events
  std::vector<Tier> tiers;

  static UsageSnapshot build(const UsageHistory& history, UnixSeconds at, UnixSeconds window);
};

// EASE weights from a binary usage matrix (users x features).
Result<Eigen::MatrixXd> fit_ease_from_usage(const UsageSnapshot::RowMatrixD& used, double lambda);

class RecommendationModel {
 public:
  // Trains on the history's rollups up to `now`. Fails when there are no features.
  static Result<RecommendationModel> train(const UsageHistory& history, UnixSeconds now,
                                           const RecommendOptions& options = {});

  // Ranked recommendations for a user of the training data; NotFound otherwise.
  Result<std::vector<FeatureRecommendation>> recommend(const std::string& user_id) const;
  // For a user who joined after training: no usage yet, only the tier.
  std::vector<FeatureRecommendation> recommend_cold_start(const User& user) const;

  UnixSeconds trained_at() const { return trained_at_; }
  std::size_t user_count() const { return user_ids_.size(); }
  const std::vector<std::string>& user_ids() const { return user_ids_; }
  const std::vector<Feature>& features() const { return features_; }
  const Eigen::MatrixXd& ease_weights() const { return core_.weights; }
  const MonotoneCalibration& calibration(RecommendationType type) const {
    return calibrations_[static_cast<int>(type)];
  }

  // Model internals shared with evaluation (one snapshot plus what is learnt from it).
  struct Core {
    UsageSnapshot snapshot;
    Eigen::MatrixXd weights;             // EASE B
    std::vector<double> popularity;      // share of users who used each feature
    std::vector<float> peer_median;      // median recent count among recent users
    std::vector<float> peer_low;         // 25th percentile of the same
    std::vector<double> retention_lift;  // P(active | used f) / P(active)
  };

 private:
  RecommendationModel() = default;
  std::vector<FeatureRecommendation> serve(int user, const User& user_record) const;

  UnixSeconds trained_at_ = 0;
  RecommendOptions options_;
  std::vector<Feature> features_;
  std::vector<std::string> user_ids_;
  std::vector<User> users_;
  std::unordered_map<std::string, int> user_index_;
  Core core_;
  std::array<MonotoneCalibration, kRecommendationTypeCount> calibrations_;
};

// Trains the Core of a model on the snapshot at `at` (used by training and evaluation).
Result<RecommendationModel::Core> build_model_core(const UsageHistory& history, UnixSeconds at,
                                                   const RecommendOptions& options);

// Unused features ranked by EASE score (ties by popularity), best first.
std::vector<int> rank_unused_features(const RecommendationModel::Core& core, int user);
// Unused features ranked by popularity alone: the most-popular baseline.
std::vector<int> rank_unused_by_popularity(const RecommendationModel::Core& core, int user);

}  // namespace fulcrum
