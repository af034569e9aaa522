// Upgrade propensity: the probability that a free user upgrades within the next 7 days,
// from engagement features at a snapshot time (active days, session trend, paywall hits on
// premium features, usage and transaction volume, tenure, failed payments). An L2
// logistic regression fitted by IRLS (fit_logistic_irls, churn_model.h) on weekly
// snapshots of past free users labelled by SubscriptionChangeEvent upgrades from free, with
// a time split: the last `holdout_snapshots` weeks are held out for evaluation (AUC, Brier)
// and for the isotonic calibration that turns model output into observed upgrade rates.
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "lifecycle/churn_model.h"
#include "recommend/calibration.h"
#include "store/model.h"
#include "usage/usage_history.h"

namespace fulcrum {

struct UpgradePropensityOptions {
  UnixSeconds horizon = 7 * kSecondsPerDay;  // label: upgraded within this after the snapshot
  int snapshots = 12;                        // weekly snapshots ending one horizon before now
  int holdout_snapshots = 3;                 // the most recent ones, held out
  double l2 = 1.0;                           // ridge on standardised coefficients
  Status validate() const;
};

// Engagement features, in column order of the design matrix.
enum UpgradeFeature {
  kActiveDays28 = 0,    // distinct active days in the last 28 days
  kSessionTrend,        // log((sessions last 14d + 1) / (sessions previous 14d + 1))
  kPaywallHits14,       // log1p(paywall hits in the last 14 days)
  kPaywallHitsPrev14,   // log1p(paywall hits in the 14 days before)
  kUsageVolume28,       // log1p(feature uses in the last 28 days)
  kTransactions28,      // log1p(successful payments in the last 28 days)
  kFailedPayments28,    // failed payments in the last 28 days
  kTenureDays,          // log1p(days since signup)
  kDistinctFeatures28,  // distinct features used in the last 28 days
  kUpgradeFeatureCount,
};
const std::vector<std::string>& upgrade_feature_names();

// Raw counts behind one user's features at a time t (for reasons and projection).
struct EngagementCounts {
  double active_days_28 = 0;
  double sessions_14 = 0, sessions_prev_14 = 0;
  double paywall_14 = 0, paywall_prev_14 = 0;
  double usage_28 = 0, usage_prev_28 = 0;
  double transactions_28 = 0, failed_payments_28 = 0;
  double tenure_days = 0;
  double distinct_features_28 = 0;
  std::vector<std::string> paywalled_features;  // most-hit first, last 28 days
};

// Features from counts (the same transform for training, serving and projection).
Eigen::VectorXd upgrade_features(const EngagementCounts& counts);

// A user's engagement counts at time `at` from their usage rollups: windows are whole UTC
// days ending at analysis_end(at), the last midnight at or before `at` (see
// usage/usage_history.h).
EngagementCounts engagement_counts(const UsageHistory& history, int user, UnixSeconds at);
// Whether the user upgraded from free in [from, to) (the tier timeline keeps exact times).
bool upgraded_from_free(const UsageHistory& history, int user, UnixSeconds from, UnixSeconds to);

// Snapshot rows: one per (snapshot time, user free at that time and signed up before it),
// grouped by snapshot (oldest first); within a snapshot, in the order the history visits its
// users (for_each_slice; user index order for an in-memory history). A row holds only what
// the fits read, in floats (counts and their logs: a float keeps 7 significant digits) —
// 40 bytes, since at a million users the rows are millions (about 9 per user).
struct UpgradeDataset {
  // Snapshot s holds rows [snapshot_begin[s], snapshot_begin[s + 1]).
  std::vector<Eigen::Index> snapshot_begin{0};
  Eigen::MatrixXf features;  // raw features, one row per snapshot row
  Eigen::VectorXf upgraded;  // label: 1 when upgraded from free within the horizon, else 0
};
// Reads the history one slice of users at a time (UsageHistory::for_each_slice); fails only
// when a streamed history's read fails.
Result<UpgradeDataset> upgrade_dataset_of(const UsageHistory& history,
                                          const std::vector<UnixSeconds>& snapshot_times,
                                          UnixSeconds horizon);
// The same for an in-memory history (load, from_events), which cannot fail.
UpgradeDataset upgrade_dataset(const UsageHistory& history,
                               const std::vector<UnixSeconds>& snapshot_times, UnixSeconds horizon);

// Brier score: mean squared difference between predicted probability and 0/1 outcome.
double brier_score(const Eigen::VectorXd& predicted, const Eigen::VectorXd& outcome);

struct UpgradeEvaluation {
  UnixSeconds train_until = 0, holdout_from = 0, holdout_until = 0;
  int train_rows = 0, holdout_rows = 0;
  double train_upgrade_rate = 0, holdout_upgrade_rate = 0;
  // Holdout metrics: the full model, the paywall-hits-only logistic rule, and the base rate.
  double model_auc = 0, model_brier = 0;
  double paywall_auc = 0, paywall_brier = 0;
  double base_rate_auc = 0.5, base_rate_brier = 0;
  std::vector<std::pair<std::string, double>> coefficients;  // standardised, with intercept
  nlohmann::json to_json() const;
};

// A trained propensity model with its holdout calibration.
struct UpgradePropensityModel {
  LogisticModel logistic;           // fitted on every snapshot (for serving)
  MonotoneCalibration calibration;  // holdout predictions -> observed upgrade rate
  UpgradeEvaluation evaluation;     // time-split figures of the holdout fit

  // Calibrated 7-day upgrade probability for raw features.
  double probability(const Eigen::VectorXd& raw_features) const {
    return calibration(logistic.predict(raw_features));
  }
};

// Weekly snapshot times ending one horizon before now, oldest first.
std::vector<UnixSeconds> upgrade_snapshot_times(UnixSeconds now,
                                                const UpgradePropensityOptions& options);

// Trains on the history up to `now` (rounded down to a midnight): the holdout fit gives the
// evaluation and the calibration, then the serving model is refitted on all snapshots.
Result<UpgradePropensityModel> train_upgrade_propensity(const UsageHistory& history,
                                                        UnixSeconds now,
                                                        const UpgradePropensityOptions& options);

}  // namespace fulcrum
