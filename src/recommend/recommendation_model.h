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
#include <optional>
#include <string>
#include <string_view>
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

// The lambda grid EASE's regularisation is validated over (1-2-5 steps; the Gram diagonal
// holds per-feature user counts, so useful values grow with the number of users).
inline const std::vector<double>& default_ease_lambda_grid() {
  static const std::vector<double> grid = {1,   2,   5,    10,   20,   50,   100,
                                           200, 500, 1000, 2000, 5000, 10000};
  return grid;
}
// The fixed value used before lambda was validated, kept as the comparison in evaluations
// and as the fallback when a split has no user to validate on.
constexpr double kFixedEaseLambda = 20.0;

struct RecommendOptions {
  // EASE L2 strength. Unset: chosen by time-split validation over ease_lambda_grid
  // (choose_ease_lambda); set: used as given.
  std::optional<double> ease_lambda;
  std::vector<double> ease_lambda_grid = default_ease_lambda_grid();
  int validation_k = 10;                             // the validation scores NDCG@validation_k
  UnixSeconds window_seconds = 28 * kSecondsPerDay;  // recent window and holdout horizon
  int max_per_type = 3;
  int max_total = 10;
};

// Per-user usage state at one instant, as dense users x features matrices (row-major so
// one user's row is contiguous). Pure data; built from the usage rollups: windows are whole
// UTC days ending at analysis_end(at), and `at` is stored rounded down to that midnight.
// Cells are as small as their values allow (flags in a byte, window counts in 16 bits,
// saturating at 65,535): at a million users and 20 features the snapshot is ~170 MB, and a
// server keeps one per trained model.
struct UsageSnapshot {
  using Flags = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Counts = Eigen::Matrix<std::uint16_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  static constexpr std::uint16_t kMaxCount = 65535;
  UnixSeconds at = 0;
  UnixSeconds window = 0;
  Flags used;                // 1 when the user used the feature before `at`
  Counts recent;             // usage count in [at - window, at)
  Counts previous;           // usage count in [at - 2 window, at - window)
  Counts paywall_recent;     // paywall hits in [at - window, at)
  Flags used_before_recent;  // 1 when the user used the feature before `at - window`
  std::vector<float> activity_recent, activity_previous;  // sessions + usage events
  std::vector<Tier> tiers;

  // The snapshot of every user of an in-memory history (a streamed one's read errors leave
  // rows empty: engines over a store walk its slices with empty() and fill()).
  static UsageSnapshot build(const UsageHistory& history, UnixSeconds at, UnixSeconds window);
  // Zero rows for every user of `history` (tiers set), for fill() to complete user by user
  // while UsageHistory::for_each_slice has the user's rows loaded.
  static UsageSnapshot empty(const UsageHistory& history, UnixSeconds at, UnixSeconds window);
  void fill(const UsageHistory& history, int user);
};

// Users with features first used in a window (new_adoptions), in ascending user order: the
// targets that lambda validation and evaluation rank against.
struct AdoptionTargets {
  std::vector<int> users;
  std::vector<std::vector<bool>> relevant;  // one flag per catalog feature
  void add(int user, const std::vector<bool>& adopted) {
    users.push_back(user);
    relevant.push_back(adopted);
  }
  // Slices visit users out of index order; the sums over targets run in index order.
  void sort_by_user();
};

// The Gram matrix X'X of a binary usage matrix (users x features), accumulated in blocks
// of rows so no double copy of the matrix is made.
Eigen::MatrixXd usage_gram(const UsageSnapshot::Flags& used);
// EASE weights from a binary usage matrix (users x features).
Result<Eigen::MatrixXd> fit_ease_from_usage(const UsageSnapshot::Flags& used, double lambda);

// The features `user` first used in [before.at, to): used then (uses > 0) and not used
// before (per `before`). Fills `adopted` (one flag per catalog feature); false when none.
bool new_adoptions(const UsageHistory& history, const UsageSnapshot& before, int user,
                   UnixSeconds to, std::vector<bool>& adopted);

// How EASE's lambda was chosen: each grid value's NDCG@k when the model is trained on the
// usage before `train_until` and ranks each user's unused features against the features
// they first used in [train_until, validate_until), averaged over users (signed up before
// train_until) with at least one such feature. `chosen` is the best grid value (the smallest
// on ties). Steck (2019, sec. 4) tunes lambda on held-out users; holding out the later
// window instead asks the question the model answers in production: what will be adopted
// next.
struct EaseLambdaValidation {
  struct Point {
    double lambda = 0;
    double ndcg = 0;
  };
  double chosen = kFixedEaseLambda;
  // False when the caller fixed lambda, or when no user adopted a new feature in the
  // validation window (then chosen = kFixedEaseLambda).
  bool validated = false;
  UnixSeconds train_until = 0, validate_until = 0;
  int k = 10;
  std::size_t users_validated = 0;
  std::vector<Point> grid;  // ascending lambda

  nlohmann::json to_json() const;
};

// Validates lambda over options.ease_lambda_grid with `train` as the training snapshot
// (taken at train.at) and the adoptions of [train.at, validate_until) as the targets. When
// options.ease_lambda is set it is returned unvalidated. InvalidArgument names the field for
// an empty grid or a non-positive value.
Result<EaseLambdaValidation> choose_ease_lambda(const UsageHistory& history,
                                                const UsageSnapshot& train,
                                                UnixSeconds validate_until,
                                                const RecommendOptions& options);
// The same with the targets already collected (the adoptions of [train.at, validate_until)
// of users signed up before train.at), so one walk over a streamed history serves both.
Result<EaseLambdaValidation> choose_ease_lambda(const UsageSnapshot& train,
                                                UnixSeconds validate_until,
                                                const AdoptionTargets& targets,
                                                const RecommendOptions& options);

// The layout version of RecommendationModel::serialize; bump it with any layout change
// (stored models of another version are refused and retrained).
constexpr int kRecommendationModelFormat = 2;
// A short hash of every option that shapes a trained model: two models are comparable (and
// a stored one may be served) only when their fingerprints are equal.
std::string recommend_options_fingerprint(const RecommendOptions& options);

class RecommendationModel {
 public:
  // Trains on the history's rollups up to `now`. Fails when there are no features.
  static Result<RecommendationModel> train(const UsageHistory& history, UnixSeconds now,
                                           const RecommendOptions& options = {});

  // Ranked recommendations for a user of the training data; NotFound otherwise.
  Result<std::vector<FeatureRecommendation>> recommend(const std::string& user_id) const;
  // For a user who joined after training: no usage yet, only the tier.
  std::vector<FeatureRecommendation> recommend_cold_start(const User& user) const;

  // The model's binary form (core/binary_codec.h, layout kRecommendationModelFormat): every
  // number is copied bit for bit, so the decoded model answers exactly as this one.
  std::string serialize() const;
  // kInvalidArgument when the payload is not such a form (truncated, inconsistent sizes).
  static Result<RecommendationModel> deserialize(std::string_view payload);

  UnixSeconds trained_at() const { return trained_at_; }
  std::size_t user_count() const { return user_ids_.size(); }
  const std::vector<std::string>& user_ids() const { return user_ids_; }
  const std::vector<Feature>& features() const { return features_; }
  const Eigen::MatrixXd& ease_weights() const { return core_.weights; }
  // The usage snapshot at trained_at() the model serves from.
  const UsageSnapshot& snapshot() const { return core_.snapshot; }
  // The lambda the weights were fitted with, and how it was chosen.
  double ease_lambda() const { return lambda_validation_.chosen; }
  const EaseLambdaValidation& lambda_validation() const { return lambda_validation_; }
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
  // What serving needs of each user besides the snapshot row (which holds the tier): the id,
  // and the ids in sorted order for lookup. A User record and a hash-map entry per user
  // would be ~260 bytes each at a million users; these are ~36.
  std::vector<std::string> user_ids_;
  std::vector<int> users_by_id_;  // indices into user_ids_, ascending by id
  int find_user(std::string_view user_id) const;  // -1 when unknown
  void index_users();                             // sorts users_by_id_
  Core core_;
  EaseLambdaValidation lambda_validation_;
  std::array<MonotoneCalibration, kRecommendationTypeCount> calibrations_;
};

// Trains the Core of a model on the snapshot at `at` with EASE strength `ease_lambda` (used
// by training and evaluation; window = options.window_seconds).
Result<RecommendationModel::Core> build_model_core(const UsageHistory& history, UnixSeconds at,
                                                   const RecommendOptions& options,
                                                   double ease_lambda);
// The same over a snapshot already built.
Result<RecommendationModel::Core> build_model_core(UsageSnapshot snapshot, double ease_lambda);

// Unused features ranked by EASE score (ties by popularity), best first.
std::vector<int> rank_unused_features(const RecommendationModel::Core& core, int user);
// The same with explicit weights (B), popularity and the user's usage row.
std::vector<int> rank_unused_features(const Eigen::MatrixXd& weights,
                                      const std::vector<double>& popularity,
                                      const std::uint8_t* used);
// Unused features ranked by popularity alone: the most-popular baseline.
std::vector<int> rank_unused_by_popularity(const RecommendationModel::Core& core, int user);

}  // namespace fulcrum
