// Churn risk model: L2-regularised logistic regression fitted by iteratively reweighted
// least squares (Newton-Raphson; Hastie, Tibshirani & Friedman, ESL 2nd ed. section 4.4.1),
// on recency / frequency / trend features of each user's daily activity. The label is
// "no activity in the `label_days` after the cutoff" among users active in the
// `label_days` before it. Evaluation is a time split: train at cutoff now-2L, test at now-L
// (L = label_days), reporting the holdout ROC AUC.
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "usage/user_activity.h"

namespace fulcrum {

class Clock;
class Store;

struct ChurnModelConfig {
  int label_days = 28;    // churned = no activity in this many days after the cutoff
  int feature_days = 56;  // history read for the features (8 weeks)
  double l2 = 1.0;        // ridge penalty on standardised coefficients (not the intercept)
  int max_iterations = 50;
  double tolerance = 1e-8;  // stop when the largest Newton step is below this
  Status validate() const;
  // Days of history needed for evaluate (train cutoff at now - 2L needs feature_days before).
  int history_days() const { return feature_days + 2 * label_days; }
};

// Feature names, in column order of churn_feature_matrix.
const std::vector<std::string>& churn_feature_names();

struct ChurnDataset {
  std::vector<int> users;    // UserActivity indices, one per row
  Eigen::MatrixXd features;  // raw (unstandardised) features
  Eigen::VectorXd churned;   // 1 = churned; empty when labels were not requested
};

// Rows for users active in the `label_days` before `cutoff_day` (day index into activity).
// Labels need cutoff_day + label_days <= activity.days().
ChurnDataset churn_dataset(const UserActivity& activity, int cutoff_day,
                           const ChurnModelConfig& config, bool with_labels);

// A feature matrix (one row per observation) as the fit and prediction read it: any
// column-major double or float matrix or block of rows, without a copy. Float halves the
// memory of the upgrade snapshots (millions of rows at a million users).
template <typename Scalar>
using FeatureMatrixRef = Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>, 0,
                                    Eigen::OuterStride<>>;

struct LogisticModel {
  Eigen::VectorXd mean, scale;   // standardisation learned on the training rows
  Eigen::VectorXd coefficients;  // on standardised features
  double intercept = 0;
  int iterations = 0;
  bool converged = false;
  // Probability of the positive class for one raw feature row.
  double predict(const Eigen::VectorXd& raw_row) const;
  Eigen::VectorXd predict_all(const FeatureMatrixRef<double>& raw) const;
  Eigen::VectorXd predict_all(const FeatureMatrixRef<float>& raw) const;
};

// Fits P(y=1|x) = 1 / (1 + exp(-(b0 + x_std . b))) minimising
// -loglik + l2/2 * |b|^2. Fails on empty data or labels outside {0,1}. Each Newton step
// reads the rows in blocks (the Hessian X'WX and gradient summed block by block), so the
// fit needs a few blocks of memory beside `raw`, not copies of it.
Result<LogisticModel> fit_logistic_irls(const FeatureMatrixRef<double>& raw,
                                        const Eigen::Ref<const Eigen::VectorXd>& y, double l2,
                                        int max_iterations = 50, double tolerance = 1e-8);
Result<LogisticModel> fit_logistic_irls(const FeatureMatrixRef<float>& raw,
                                        const Eigen::Ref<const Eigen::VectorXd>& y, double l2,
                                        int max_iterations = 50, double tolerance = 1e-8);

// ROC AUC as the Mann-Whitney probability P(score_pos > score_neg) + 0.5 P(tie).
// NaN when either class is empty.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

struct ChurnEvaluation {
  UnixSeconds train_cutoff = 0, test_cutoff = 0;
  int train_rows = 0, test_rows = 0;
  double train_churn_rate = 0, test_churn_rate = 0;
  double test_auc = 0;  // NaN (null in JSON) when the holdout has one class only
  int iterations = 0;
  bool converged = false;
  std::vector<std::pair<std::string, double>> coefficients;  // standardised, with intercept
  nlohmann::json to_json() const;
};

// Time-split evaluation on an activity window of at least config.history_days() days.
Result<ChurnEvaluation> evaluate_churn_model(const UserActivity& activity,
                                             const ChurnModelConfig& config);
// Same, loading the activity from the store with now from the clock.
Result<ChurnEvaluation> evaluate_churn_model(Store& store, const Clock& clock,
                                             const ChurnModelConfig& config);

// Trains on the most recent fully labelled cutoff (now - label_days) and scores every user
// active in the last label_days: (user index, churn probability).
Result<std::vector<std::pair<int, double>>> score_churn_risk(const UserActivity& activity,
                                                             const ChurnModelConfig& config);

}  // namespace fulcrum
