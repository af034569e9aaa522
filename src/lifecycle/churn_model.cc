#include "lifecycle/churn_model.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <span>

#include "core/time.h"
#include "store/store.h"

namespace fulcrum {

Status ChurnModelConfig::validate() const {
  if (label_days < 1) return invalid_argument("must be >= 1", "churn.label_days");
  if (feature_days < 14 || feature_days % 7 != 0) {
    return invalid_argument("must be a multiple of 7 and >= 14", "churn.feature_days");
  }
  if (!(l2 >= 0)) return invalid_argument("must be >= 0", "churn.l2");
  if (max_iterations < 1) return invalid_argument("must be >= 1", "churn.max_iterations");
  if (!(tolerance > 0)) return invalid_argument("must be > 0", "churn.tolerance");
  return Status::ok();
}

const std::vector<std::string>& churn_feature_names() {
  static const std::vector<std::string> names = {
      "recency_days", "active_days_28",     "log_events_7", "log_events_28", "weekly_trend",
      "recent_ratio", "failed_payments_28", "paid_tier",    "tenure_months"};
  return names;
}

namespace {

// OLS slope of weekly activity totals over the `weeks` weeks before cutoff_day, divided by
// (mean weekly activity + 1) so heavy and light users are comparable.
double relative_weekly_slope(const UserActivity& activity, int user, int cutoff_day, int weeks) {
  double sum_x = 0, sum_y = 0, sum_xx = 0, sum_xy = 0;
  for (int w = 0; w < weeks; ++w) {
    int from = cutoff_day - (weeks - w) * 7;
    double y = static_cast<double>(activity.activity_sum(user, from, from + 7));
    sum_x += w;
    sum_y += y;
    sum_xx += static_cast<double>(w) * w;
    sum_xy += w * y;
  }
  double n = weeks;
  double denominator = n * sum_xx - sum_x * sum_x;
  double slope = denominator > 0 ? (n * sum_xy - sum_x * sum_y) / denominator : 0.0;
  return slope / (sum_y / n + 1.0);
}

// Failures in [from, to) with no later success before `to`.
int unrecovered_failures(const UserActivity& activity, int user, UnixSeconds from, UnixSeconds to) {
  const auto& payments = activity.payments(user);
  int count = 0;
  bool success_after = false;
  for (auto it = payments.rbegin(); it != payments.rend(); ++it) {
    if (it->at >= to) continue;
    if (it->at < from) break;
    if (it->succeeded) {
      success_after = true;
    } else if (!success_after) {
      ++count;
    }
  }
  return count;
}

}  // namespace

ChurnDatasetBuilder::ChurnDatasetBuilder(int user_count, int cutoff_day,
                                         const ChurnModelConfig& config, bool with_labels)
    : cutoff_day_(cutoff_day),
      config_(config),
      with_labels_(with_labels),
      has_row_(static_cast<std::size_t>(user_count), false) {
  data_.features_.resize(user_count, static_cast<Eigen::Index>(churn_feature_names().size()));
  if (with_labels) data_.churned_.resize(user_count);
}

void ChurnDatasetBuilder::add(const UserActivity& activity, int user) {
  const int cutoff_day = cutoff_day_;
  const int label_days = config_.label_days;
  // Only users active in the window before the cutoff can churn after it.
  const int last = activity.last_active_day(user, cutoff_day);
  if (last < 0 || last < cutoff_day - label_days) return;
  const UnixSeconds cutoff_time = activity.day_start(cutoff_day);
  double events_7 = static_cast<double>(activity.activity_sum(user, cutoff_day - 7, cutoff_day));
  double events_28 = static_cast<double>(activity.activity_sum(user, cutoff_day - 28, cutoff_day));
  double prior_28 =
      static_cast<double>(activity.activity_sum(user, cutoff_day - 35, cutoff_day - 7));
  UnixSeconds signup = activity.signup_at(user);
  double tenure_days =
      signup > 0 ? static_cast<double>(cutoff_time - signup) / kSecondsPerDay : 365.0;
  const double row[] = {
      static_cast<double>(cutoff_day - 1 - last),
      static_cast<double>(activity.active_days(user, cutoff_day - 28, cutoff_day)),
      std::log1p(events_7),
      std::log1p(events_28),
      relative_weekly_slope(activity, user, cutoff_day, config_.feature_days / 7),
      events_7 / (prior_28 / 4.0 + 1.0),
      static_cast<double>(
          unrecovered_failures(activity, user, cutoff_time - 28 * kSecondsPerDay, cutoff_time)),
      activity.tier(user) == Tier::kFree ? 0.0 : 1.0,
      std::clamp(tenure_days, 0.0, 365.0) / 30.0,
  };
  for (Eigen::Index j = 0; j < data_.features_.cols(); ++j) data_.features_(user, j) = row[j];
  if (with_labels_) {
    data_.churned_[user] =
        activity.activity_sum(user, cutoff_day, cutoff_day + label_days) == 0 ? 1.0 : 0.0;
  }
  has_row_[static_cast<std::size_t>(user)] = true;
}

ChurnDataset ChurnDatasetBuilder::finish() && {
  // Pack the rows in place, in user order (row r moves up from its user's index >= r).
  for (std::size_t user = 0; user < has_row_.size(); ++user) {
    if (has_row_[user]) data_.users_.push_back(static_cast<int>(user));
  }
  for (Eigen::Index j = 0; j < data_.features_.cols(); ++j) {
    auto column = data_.features_.col(j);
    for (std::size_t r = 0; r < data_.users_.size(); ++r) {
      column[static_cast<Eigen::Index>(r)] = column[data_.users_[r]];
    }
  }
  for (std::size_t r = 0; r < data_.users_.size() && with_labels_; ++r) {
    data_.churned_[static_cast<Eigen::Index>(r)] = data_.churned_[data_.users_[r]];
  }
  std::vector<bool>().swap(has_row_);
  return std::move(data_);
}

double LogisticModel::predict(const Eigen::VectorXd& raw_row) const {
  Eigen::VectorXd z = (raw_row - mean).cwiseQuotient(scale);
  double eta = intercept + z.dot(coefficients);
  return 1.0 / (1.0 + std::exp(-eta));
}

namespace {

// Rows read per block by the fit and the predictions: small enough to stay in cache-sized
// buffers, large enough for the matrix products to run at full speed.
constexpr Eigen::Index kRowBlock = 8192;

// Standardised rows [start, start + rows) of `raw` with the intercept in column 0.
template <typename Scalar>
void standardised_block(const FeatureMatrixRef<Scalar>& raw, const LogisticModel& model,
                        Eigen::Index start, Eigen::Index rows, Eigen::MatrixXd& x) {
  const Eigen::Index k = raw.cols();
  x.col(0).head(rows).setOnes();
  for (Eigen::Index j = 0; j < k; ++j) {
    x.col(j + 1).head(rows) =
        (raw.col(j).segment(start, rows).template cast<double>().array() - model.mean[j]) /
        model.scale[j];
  }
}

template <typename Scalar>
Eigen::VectorXd predict_rows(const LogisticModel& model, const FeatureMatrixRef<Scalar>& raw) {
  const Eigen::Index n = raw.rows(), k = raw.cols();
  Eigen::VectorXd out(n);
  Eigen::MatrixXd x(std::min(n, kRowBlock), k + 1);
  Eigen::VectorXd beta(k + 1);
  beta[0] = model.intercept;
  beta.tail(k) = model.coefficients;
  for (Eigen::Index start = 0; start < n; start += kRowBlock) {
    const Eigen::Index rows = std::min(kRowBlock, n - start);
    standardised_block(raw, model, start, rows, x);
    out.segment(start, rows) = (1.0 / (1.0 + (-(x.topRows(rows) * beta).array()).exp())).matrix();
  }
  return out;
}

template <typename Scalar>
Result<LogisticModel> fit_rows(const FeatureMatrixRef<Scalar>& raw, const LabelVectorRef<Scalar>& y,
                               double l2, int max_iterations, double tolerance) {
  const Eigen::Index n = raw.rows(), k = raw.cols();
  if (n == 0) return invalid_argument("no training rows", "features");
  if (y.size() != n) return invalid_argument("labels and rows differ in length", "labels");
  for (Eigen::Index i = 0; i < n; ++i) {
    if (y[i] != 0.0 && y[i] != 1.0) return invalid_argument("labels must be 0 or 1", "labels");
  }
  if (!(l2 >= 0)) return invalid_argument("must be >= 0", "l2");
  LogisticModel model;
  model.mean.resize(k);
  model.scale.resize(k);
  for (Eigen::Index j = 0; j < k; ++j) {
    const auto column = raw.col(j).template cast<double>();
    model.mean[j] = column.sum() / static_cast<double>(n);
    model.scale[j] =
        std::sqrt((column.array() - model.mean[j]).square().sum() / static_cast<double>(n));
    if (!(model.scale[j] > 1e-12)) model.scale[j] = 1.0;  // constant column: leave centred
  }
  Eigen::VectorXd penalty = Eigen::VectorXd::Constant(k + 1, l2);
  penalty[0] = 0.0;
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(k + 1);
  // One block of standardised rows (intercept in column 0) and its weighted copy, reused by
  // every block of every step: with millions of rows an n x k design matrix per fit would
  // cost more memory than the data.
  const Eigen::Index block = std::min(n, kRowBlock);
  Eigen::MatrixXd x(block, k + 1), weighted_x(block, k + 1);
  Eigen::VectorXd p(block), w(block);
  Eigen::MatrixXd hessian(k + 1, k + 1);
  Eigen::VectorXd gradient(k + 1);
  for (int iteration = 1; iteration <= max_iterations; ++iteration) {
    // Newton step for the penalised log-likelihood: H = X'WX + L, g = X'(y-p) - L beta.
    hessian.setZero();
    gradient.setZero();
    for (Eigen::Index start = 0; start < n; start += kRowBlock) {
      const Eigen::Index rows = std::min(kRowBlock, n - start);
      standardised_block(raw, model, start, rows, x);
      const auto xb = x.topRows(rows);
      p.head(rows) = (1.0 / (1.0 + (-(xb * beta).array()).exp())).matrix();
      w.head(rows) = (p.head(rows).array() * (1.0 - p.head(rows).array())).max(1e-10).matrix();
      weighted_x.topRows(rows) = xb.array().colwise() * w.head(rows).array();
      hessian.noalias() += weighted_x.topRows(rows).transpose() * xb;
      gradient.noalias() +=
          xb.transpose() * (y.segment(start, rows).template cast<double>() - p.head(rows));
    }
    hessian.diagonal() += penalty;
    gradient -= penalty.cwiseProduct(beta);
    Eigen::VectorXd step = hessian.ldlt().solve(gradient);
    if (!step.allFinite()) return internal_error("IRLS produced a non-finite step");
    beta += step;
    model.iterations = iteration;
    if (step.cwiseAbs().maxCoeff() < tolerance) {
      model.converged = true;
      break;
    }
  }
  model.intercept = beta[0];
  model.coefficients = beta.tail(k);
  return model;
}

}  // namespace

Eigen::VectorXd LogisticModel::predict_all(const FeatureMatrixRef<double>& raw) const {
  return predict_rows(*this, raw);
}
Eigen::VectorXd LogisticModel::predict_all(const FeatureMatrixRef<float>& raw) const {
  return predict_rows(*this, raw);
}

Result<LogisticModel> fit_logistic_irls(const FeatureMatrixRef<double>& raw,
                                        const LabelVectorRef<double>& y, double l2,
                                        int max_iterations, double tolerance) {
  return fit_rows(raw, y, l2, max_iterations, tolerance);
}
Result<LogisticModel> fit_logistic_irls(const FeatureMatrixRef<float>& raw,
                                        const LabelVectorRef<float>& y, double l2,
                                        int max_iterations, double tolerance) {
  return fit_rows(raw, y, l2, max_iterations, tolerance);
}

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  const std::size_t n = std::min(scores.size(), labels.size());
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U from mid-ranks (ties share their average rank).
  double positive_rank_sum = 0;
  double positives = 0, negatives = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (std::size_t t = i; t < j; ++t) {
      if (labels[order[t]] != 0) {
        positive_rank_sum += mid_rank;
        positives += 1;
      } else {
        negatives += 1;
      }
    }
    i = j;
  }
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  return (positive_rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives);
}

nlohmann::json ChurnEvaluation::to_json() const {
  nlohmann::json coefficient_json = nlohmann::json::object();
  for (const auto& [name, value] : coefficients) coefficient_json[name] = value;
  return {{"model", "l2_logistic_regression_irls"},
          {"train_cutoff", format_iso8601(train_cutoff)},
          {"test_cutoff", format_iso8601(test_cutoff)},
          {"train_rows", train_rows},
          {"test_rows", test_rows},
          {"train_churn_rate", train_churn_rate},
          {"test_churn_rate", test_churn_rate},
          {"test_auc", std::isnan(test_auc) ? nlohmann::json(nullptr) : nlohmann::json(test_auc)},
          {"iterations", iterations},
          {"converged", converged},
          {"coefficients", coefficient_json}};
}

namespace {

std::vector<int> to_int_labels(const Eigen::Ref<const Eigen::VectorXd>& y) {
  std::vector<int> labels(static_cast<std::size_t>(y.size()));
  for (Eigen::Index i = 0; i < y.size(); ++i) labels[i] = y[i] > 0.5 ? 1 : 0;
  return labels;
}

// Collects datasets at several cutoffs in one walk over the activity's slices.
Status collect(const UserActivity& activity, std::initializer_list<ChurnDatasetBuilder*> builders) {
  return activity.for_each_slice([&](std::span<const int> users) {
    for (int user : users) {
      for (ChurnDatasetBuilder* builder : builders) builder->add(activity, user);
    }
    return Status::ok();
  });
}

}  // namespace

Result<ChurnEvaluation> evaluate_churn_model(const UserActivity& activity,
                                             const ChurnModelConfig& config) {
  FULCRUM_RETURN_IF_ERROR(config.validate());
  if (activity.days() < config.history_days()) {
    return invalid_argument("activity window shorter than feature_days + 2 * label_days",
                            "history_days");
  }
  const int test_cutoff = activity.days() - config.label_days;
  const int train_cutoff = test_cutoff - config.label_days;
  ChurnDatasetBuilder train_rows(activity.user_count(), train_cutoff, config, true);
  ChurnDatasetBuilder test_rows(activity.user_count(), test_cutoff, config, true);
  FULCRUM_RETURN_IF_ERROR(collect(activity, {&train_rows, &test_rows}));
  const ChurnDataset train = std::move(train_rows).finish();
  const ChurnDataset test = std::move(test_rows).finish();
  if (train.rows() == 0) return failed_precondition("no active users before the train cutoff");
  auto model = fit_logistic_irls(train.features(), train.churned(), config.l2,
                                 config.max_iterations, config.tolerance);
  if (!model) return model.status();
  ChurnEvaluation evaluation;
  evaluation.train_cutoff = activity.day_start(train_cutoff);
  evaluation.test_cutoff = activity.day_start(test_cutoff);
  evaluation.train_rows = train.rows();
  evaluation.test_rows = test.rows();
  evaluation.train_churn_rate = train.churned().mean();
  evaluation.test_churn_rate = test.rows() == 0 ? 0.0 : test.churned().mean();
  evaluation.iterations = model->iterations;
  evaluation.converged = model->converged;
  evaluation.coefficients.emplace_back("intercept", model->intercept);
  for (std::size_t j = 0; j < churn_feature_names().size(); ++j) {
    evaluation.coefficients.emplace_back(churn_feature_names()[j],
                                         model->coefficients[static_cast<Eigen::Index>(j)]);
  }
  if (test.rows() == 0) {
    evaluation.test_auc = std::numeric_limits<double>::quiet_NaN();
  } else {
    Eigen::VectorXd scores = model->predict_all(test.features());
    evaluation.test_auc = roc_auc(std::vector<double>(scores.data(), scores.data() + scores.size()),
                                  to_int_labels(test.churned()));
  }
  return evaluation;
}

Result<ChurnEvaluation> evaluate_churn_model(Store& store, const Clock& clock,
                                             const ChurnModelConfig& config) {
  FULCRUM_RETURN_IF_ERROR(config.validate());
  auto activity = UserActivity::open(store, clock.now(), config.history_days());
  if (!activity) return activity.status();
  return evaluate_churn_model(*activity, config);
}

Result<std::vector<std::pair<int, double>>> score_churn_risk(const UserActivity& activity,
                                                             const ChurnModelConfig& config) {
  FULCRUM_RETURN_IF_ERROR(config.validate());
  if (activity.days() < config.feature_days + config.label_days) {
    return invalid_argument("activity window shorter than feature_days + label_days",
                            "history_days");
  }
  ChurnDatasetBuilder train(activity.user_count(), activity.days() - config.label_days, config,
                            true);
  ChurnDatasetBuilder current(activity.user_count(), activity.days(), config, false);
  FULCRUM_RETURN_IF_ERROR(collect(activity, {&train, &current}));
  return score_churn_risk(std::move(train).finish(), std::move(current).finish(), config);
}

Result<std::vector<std::pair<int, double>>> score_churn_risk(const ChurnDataset& train,
                                                             const ChurnDataset& current,
                                                             const ChurnModelConfig& config) {
  std::vector<std::pair<int, double>> scored;
  if (train.rows() == 0) return scored;
  const double churn_rate = train.churned().mean();
  if (churn_rate == 0.0 || churn_rate == 1.0) return scored;  // nothing to learn from
  auto model = fit_logistic_irls(train.features(), train.churned(), config.l2,
                                 config.max_iterations, config.tolerance);
  if (!model) return model.status();
  if (current.rows() == 0) return scored;
  Eigen::VectorXd scores = model->predict_all(current.features());
  scored.reserve(current.users().size());
  for (std::size_t i = 0; i < current.users().size(); ++i) {
    scored.emplace_back(current.users()[i], scores[static_cast<Eigen::Index>(i)]);
  }
  return scored;
}

}  // namespace fulcrum
