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

// A feature matrix (one row per observation) as the fit and prediction read it: any
// column-major double or float matrix or block of rows, without a copy. Float halves the
// memory of the upgrade snapshots (millions of rows at a million users), and of their labels.
template <typename Scalar>
using FeatureMatrixRef = Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>, 0,
                                    Eigen::OuterStride<>>;

// Labels (0 or 1), one per row of a FeatureMatrixRef, in the same scalar type.
template <typename Scalar>
using LabelVectorRef = Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>;

// Rows for the users active in the `label_days` before a cutoff (day index into the
// activity), in user order, and their labels (churned = no activity in the label_days from
// the cutoff) when requested.
class ChurnDataset {
 public:
  int rows() const { return static_cast<int>(users_.size()); }
  const std::vector<int>& users() const { return users_; }  // UserActivity index per row
  // rows() x churn_feature_names().size(), raw (unstandardised).
  Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>> features() const {
    return {features_.data(), rows(), features_.cols(), Eigen::OuterStride<>(features_.rows())};
  }
  // 1 = churned; empty when labels were not requested.
  Eigen::VectorBlock<const Eigen::VectorXd> churned() const {
    return churned_.head(churned_.size() == 0 ? 0 : rows());
  }

 private:
  friend class ChurnDatasetBuilder;
  std::vector<int> users_;
  Eigen::MatrixXd features_;  // row i of the dataset is row i (rows beyond rows() unused)
  Eigen::VectorXd churned_;
};

// Collects a ChurnDataset user by user, e.g. during UserActivity::for_each_slice: each row is
// written at its user's index and the rows are packed in user order at the end, so the
// dataset (and a model fitted on it) does not depend on the order the slices come in.
// Memory: one row per user of the activity, whether active or not.
class ChurnDatasetBuilder {
 public:
  // Labels need cutoff_day + label_days <= activity.days().
  ChurnDatasetBuilder(int user_count, int cutoff_day, const ChurnModelConfig& config,
                      bool with_labels);
  // The user's row, when active in the label_days before the cutoff; `user`'s cells must be
  // loaded (the current slice's).
  void add(const UserActivity& activity, int user);
  ChurnDataset finish() &&;

 private:
  int cutoff_day_;
  ChurnModelConfig config_;
  bool with_labels_;
  std::vector<bool> has_row_;
  ChurnDataset data_;
};

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
                                        const LabelVectorRef<double>& y, double l2,
                                        int max_iterations = 50, double tolerance = 1e-8);
Result<LogisticModel> fit_logistic_irls(const FeatureMatrixRef<float>& raw,
                                        const LabelVectorRef<float>& y, double l2,
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
// active in the last label_days: (user index, churn probability), in user order.
Result<std::vector<std::pair<int, double>>> score_churn_risk(const UserActivity& activity,
                                                             const ChurnModelConfig& config);
// The same from the datasets at those cutoffs: `train` labelled at now - label_days,
// `current` at now (for callers that collect them in their own pass over the activity).
Result<std::vector<std::pair<int, double>>> score_churn_risk(const ChurnDataset& train,
                                                             const ChurnDataset& current,
                                                             const ChurnModelConfig& config);

}  // namespace fulcrum
