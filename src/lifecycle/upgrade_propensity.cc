#include "lifecycle/upgrade_propensity.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace fulcrum {
namespace {

template <typename Vector>
std::vector<double> to_vector(const Vector& v) {
  std::vector<double> values(static_cast<std::size_t>(v.size()));
  for (Eigen::Index i = 0; i < v.size(); ++i) values[static_cast<std::size_t>(i)] = v[i];
  return values;
}
template <typename Vector>
std::vector<int> to_labels(const Vector& v) {
  std::vector<int> labels(static_cast<std::size_t>(v.size()));
  for (Eigen::Index i = 0; i < v.size(); ++i) labels[static_cast<std::size_t>(i)] = v[i] > 0.5;
  return labels;
}

}  // namespace

Status UpgradePropensityOptions::validate() const {
  if (horizon <= 0) return invalid_argument("must be positive", "horizon");
  if (holdout_snapshots < 1) return invalid_argument("must be >= 1", "holdout_snapshots");
  if (snapshots < holdout_snapshots + 2) {
    return invalid_argument("must exceed holdout_snapshots by at least 2", "snapshots");
  }
  if (!(l2 >= 0)) return invalid_argument("must be >= 0", "l2");
  return Status::ok();
}

const std::vector<std::string>& upgrade_feature_names() {
  static const std::vector<std::string> names = {
      "active_days_28",       "session_trend",   "paywall_hits_14",
      "paywall_hits_prev_14", "usage_volume_28", "transactions_28",
      "failed_payments_28",   "tenure_days",     "distinct_features_28"};
  return names;
}

Eigen::VectorXd upgrade_features(const EngagementCounts& c) {
  Eigen::VectorXd x(kUpgradeFeatureCount);
  x[kActiveDays28] = c.active_days_28;
  x[kSessionTrend] = std::log((c.sessions_14 + 1) / (c.sessions_prev_14 + 1));
  x[kPaywallHits14] = std::log1p(c.paywall_14);
  x[kPaywallHitsPrev14] = std::log1p(c.paywall_prev_14);
  x[kUsageVolume28] = std::log1p(c.usage_28);
  x[kTransactions28] = std::log1p(c.transactions_28);
  x[kFailedPayments28] = c.failed_payments_28;
  x[kTenureDays] = std::log1p(std::max(0.0, c.tenure_days));
  x[kDistinctFeatures28] = c.distinct_features_28;
  return x;
}

EngagementCounts engagement_counts(const UsageHistory& history, int user, UnixSeconds at) {
  const UsageDay end = analysis_end_day(at);
  EngagementCounts c;
  for (const auto& d : history.days_between(user, end - 56, end)) {
    const bool recent_28 = d.day >= end - 28;
    if (recent_28) {
      c.active_days_28 += (d.sessions > 0 || d.usage_events > 0) ? 1 : 0;
      const bool recent_14 = d.day >= end - 14;
      (recent_14 ? c.sessions_14 : c.sessions_prev_14) += d.sessions;
      (recent_14 ? c.paywall_14 : c.paywall_prev_14) += d.paywall_hits;
      c.usage_28 += d.uses;
      c.transactions_28 += d.payments_succeeded;
      c.failed_payments_28 += d.payments_failed;
    } else {
      c.usage_prev_28 += d.uses;
    }
  }
  c.tenure_days =
      static_cast<double>(at - history.signup_at(user)) / static_cast<double>(kSecondsPerDay);
  const int catalog = static_cast<int>(history.features().size());
  std::vector<bool> seen(catalog, false);
  std::map<int, int> hits;
  for (const auto& d : history.feature_days_between(user, end - 28, end)) {
    if (d.feature >= catalog) continue;
    if (d.usage_events > 0 && !seen[d.feature]) {
      seen[d.feature] = true;
      c.distinct_features_28 += 1;
    }
    if (d.paywall_hits > 0) hits[d.feature] += d.paywall_hits;
  }
  std::vector<std::pair<int, int>> ranked;
  for (const auto& [feature, n] : hits) ranked.push_back({-n, feature});
  std::sort(ranked.begin(), ranked.end());
  for (const auto& [negative_count, feature] : ranked) {
    c.paywalled_features.push_back(history.features()[feature].name);
  }
  return c;
}

bool upgraded_from_free(const UsageHistory& history, int user, UnixSeconds from, UnixSeconds to) {
  for (const auto& change : history.tier_changes(user)) {
    if (change.at >= from && change.at < to && change.kind == SubscriptionChangeKind::kUpgrade &&
        change.from_tier == Tier::kFree) {
      return true;
    }
  }
  return false;
}

Result<UpgradeDataset> upgrade_dataset_of(const UsageHistory& history,
                                          const std::vector<UnixSeconds>& snapshot_times,
                                          UnixSeconds horizon) {
  const int users = history.user_count();
  const std::size_t snapshots = snapshot_times.size();
  auto eligible = [&](int user, UnixSeconds at) {
    return history.signup_at(user) < at && history.tier_at(user, at) == Tier::kFree;
  };
  // Who is eligible needs no day rows (signup and tier timeline), so each snapshot's block
  // of rows is sized before any row is read; the slices then fill each block front to back.
  // No per-row user or time is kept: the fits read features and labels only, and a row's
  // snapshot is its block.
  UpgradeDataset data;
  data.snapshot_begin.assign(snapshots + 1, 0);
  for (std::size_t s = 0; s < snapshots; ++s) {
    Eigen::Index count = 0;
    for (int user = 0; user < users; ++user) count += eligible(user, snapshot_times[s]) ? 1 : 0;
    data.snapshot_begin[s + 1] = data.snapshot_begin[s] + count;
  }
  const Eigen::Index rows = data.snapshot_begin[snapshots];
  data.features.resize(rows, kUpgradeFeatureCount);
  data.upgraded.resize(rows);
  std::vector<Eigen::Index> next_row(data.snapshot_begin.begin(), data.snapshot_begin.end() - 1);
  Status read = history.for_each_slice([&](std::span<const int> slice) {
    for (int user : slice) {
      for (std::size_t s = 0; s < snapshots; ++s) {
        const UnixSeconds at = snapshot_times[s];
        if (!eligible(user, at)) continue;
        const Eigen::Index row = next_row[s]++;
        data.features.row(row) =
            upgrade_features(engagement_counts(history, user, at)).cast<float>().transpose();
        data.upgraded[row] = upgraded_from_free(history, user, at, at + horizon) ? 1.0f : 0.0f;
      }
    }
    return Status::ok();
  });
  if (!read.is_ok()) return read;
  return data;
}

UpgradeDataset upgrade_dataset(const UsageHistory& history,
                               const std::vector<UnixSeconds>& snapshot_times,
                               UnixSeconds horizon) {
  auto data = upgrade_dataset_of(history, snapshot_times, horizon);
  return data.is_ok() ? std::move(data).value() : UpgradeDataset{};
}

namespace {

template <typename Predicted, typename Outcome>
double mean_squared_error(const Predicted& predicted, const Outcome& outcome) {
  if (predicted.size() == 0) return 0.0;
  return (predicted - outcome.template cast<double>()).squaredNorm() /
         static_cast<double>(predicted.size());
}

// The Brier score of scores held in a std::vector (as roc_auc reads them) against float
// labels, without copying either.
template <typename Outcome>
double brier_of(const std::vector<double>& predicted, const Outcome& outcome) {
  return mean_squared_error(Eigen::Map<const Eigen::VectorXd>(
                                predicted.data(), static_cast<Eigen::Index>(predicted.size())),
                            outcome);
}

}  // namespace

double brier_score(const Eigen::VectorXd& predicted, const Eigen::VectorXd& outcome) {
  return mean_squared_error(predicted, outcome);
}

nlohmann::json UpgradeEvaluation::to_json() const {
  nlohmann::json coefficients_json = nlohmann::json::object();
  for (const auto& [name, value] : coefficients) coefficients_json[name] = value;
  auto metric = [](double auc, double brier) {
    return nlohmann::json{{"auc", std::isfinite(auc) ? nlohmann::json(auc) : nlohmann::json()},
                          {"brier", brier}};
  };
  return nlohmann::json{
      {"train_until", format_iso8601(train_until)},
      {"holdout_from", format_iso8601(holdout_from)},
      {"holdout_until", format_iso8601(holdout_until)},
      {"train_rows", train_rows},
      {"holdout_rows", holdout_rows},
      {"train_upgrade_rate", train_upgrade_rate},
      {"holdout_upgrade_rate", holdout_upgrade_rate},
      {"model", metric(model_auc, model_brier)},
      {"paywall_hits_only", metric(paywall_auc, paywall_brier)},
      {"base_rate", metric(base_rate_auc, base_rate_brier)},
      {"coefficients", coefficients_json},
  };
}

std::vector<UnixSeconds> upgrade_snapshot_times(UnixSeconds now,
                                                const UpgradePropensityOptions& options) {
  std::vector<UnixSeconds> times;
  for (int k = options.snapshots; k >= 1; --k) {
    times.push_back(now - options.horizon * k);
  }
  return times;
}

Result<UpgradePropensityModel> train_upgrade_propensity(const UsageHistory& history,
                                                        UnixSeconds now,
                                                        const UpgradePropensityOptions& options) {
  FULCRUM_RETURN_IF_ERROR(options.validate());
  // Snapshots at midnights: day windows are exact and labels start where features end.
  now = analysis_end(now);
  std::vector<UnixSeconds> times = upgrade_snapshot_times(now, options);
  auto dataset = upgrade_dataset_of(history, times, options.horizon);
  if (!dataset.is_ok()) return dataset.status();
  const UpgradeDataset& all = *dataset;
  // Time split: holdout = the last holdout_snapshots snapshots; training rows must have
  // their whole label window before the first holdout snapshot. Both are blocks of
  // snapshots, so blocks of rows (read in place, not copied): training the leading rows,
  // holdout the trailing ones.
  const std::size_t holdout_first = times.size() - options.holdout_snapshots;
  const UnixSeconds holdout_from = times[holdout_first];
  std::size_t train_snapshots = 0;
  while (times[train_snapshots] + options.horizon <= holdout_from) ++train_snapshots;
  const Eigen::Index train_rows = all.snapshot_begin[train_snapshots];
  const Eigen::Index holdout_start = all.snapshot_begin[holdout_first];
  const Eigen::Index holdout_rows = all.features.rows() - holdout_start;
  const auto train_features = all.features.topRows(train_rows);
  const auto train_upgraded = all.upgraded.head(train_rows);
  const auto holdout_features = all.features.bottomRows(holdout_rows);
  const auto holdout_upgraded = all.upgraded.tail(holdout_rows);
  if (train_rows == 0 || train_upgraded.sum() == 0) {
    return failed_precondition("no upgrades from free in the training snapshots");
  }
  if (holdout_rows == 0) return failed_precondition("no free users in the holdout");
  auto fitted = fit_logistic_irls(train_features, train_upgraded, options.l2);
  if (!fitted.is_ok()) return fitted.status();
  auto paywall_fit = fit_logistic_irls(all.features.block(0, kPaywallHits14, train_rows, 1),
                                       train_upgraded, options.l2);
  if (!paywall_fit.is_ok()) return paywall_fit.status();

  UpgradePropensityModel model;
  UpgradeEvaluation& e = model.evaluation;
  e.train_until = holdout_from;
  e.holdout_from = holdout_from;
  e.holdout_until = now;
  e.train_rows = static_cast<int>(train_rows);
  e.holdout_rows = static_cast<int>(holdout_rows);
  e.train_upgrade_rate = train_upgraded.cast<double>().mean();
  e.holdout_upgrade_rate = holdout_upgraded.cast<double>().mean();
  // One predictor's holdout scores at a time (8 bytes a row each: at a million users the
  // holdout is millions of rows); the model's are kept for the calibration.
  std::vector<double> predicted;
  {
    const std::vector<int> labels = to_labels(holdout_upgraded);
    predicted = to_vector(fitted->predict_all(holdout_features));
    e.model_auc = roc_auc(predicted, labels);
    e.model_brier = brier_of(predicted, holdout_upgraded);
    const std::vector<double> paywall_predicted = to_vector(paywall_fit->predict_all(
        all.features.block(holdout_start, kPaywallHits14, holdout_rows, 1)));
    e.paywall_auc = roc_auc(paywall_predicted, labels);
    e.paywall_brier = brier_of(paywall_predicted, holdout_upgraded);
  }
  {
    const std::vector<double> base(static_cast<std::size_t>(holdout_rows), e.train_upgrade_rate);
    e.base_rate_auc = roc_auc(base, to_labels(holdout_upgraded));
    e.base_rate_brier = brier_of(base, holdout_upgraded);
  }
  model.calibration =
      MonotoneCalibration::fit(predicted, to_vector(holdout_upgraded), 2.0, e.train_upgrade_rate);
  std::vector<double>().swap(predicted);

  // Serving model: every snapshot whose label window is complete (all of them).
  auto serving = fit_logistic_irls(all.features, all.upgraded, options.l2);
  if (!serving.is_ok()) return serving.status();
  model.logistic = std::move(serving).value();
  e.coefficients.emplace_back("intercept", model.logistic.intercept);
  for (int j = 0; j < kUpgradeFeatureCount; ++j) {
    e.coefficients.emplace_back(upgrade_feature_names()[j], model.logistic.coefficients[j]);
  }
  return model;
}

}  // namespace fulcrum
