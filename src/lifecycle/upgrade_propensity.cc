#include "lifecycle/upgrade_propensity.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace fulcrum {
namespace {

std::vector<double> to_vector(const Eigen::VectorXd& v) {
  return std::vector<double>(v.data(), v.data() + v.size());
}
std::vector<int> to_labels(const Eigen::VectorXd& v) {
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
      static_cast<double>(at - history.user(user).signup_at) / static_cast<double>(kSecondsPerDay);
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
  // Who is eligible needs no day rows (signup and tier timeline), so every row's place is
  // known before the rows are read: row = first row of its snapshot + the user's rank among
  // that snapshot's eligible users. The slices then fill their users' rows in place.
  const int users = history.user_count();
  const std::size_t snapshots = snapshot_times.size();
  std::vector<std::int32_t> row_of(snapshots * static_cast<std::size_t>(users), -1);
  Eigen::Index rows = 0;
  for (std::size_t s = 0; s < snapshots; ++s) {
    const UnixSeconds at = snapshot_times[s];
    for (int user = 0; user < users; ++user) {
      if (history.user(user).signup_at < at && history.tier_at(user, at) == Tier::kFree) {
        row_of[s * static_cast<std::size_t>(users) + static_cast<std::size_t>(user)] =
            static_cast<std::int32_t>(rows++);
      }
    }
  }
  UpgradeDataset data;
  data.users.resize(static_cast<std::size_t>(rows));
  data.at.resize(static_cast<std::size_t>(rows));
  data.features.resize(rows, kUpgradeFeatureCount);
  data.upgraded.resize(rows);
  Status read = history.for_each_slice([&](std::span<const int> slice) {
    for (int user : slice) {
      for (std::size_t s = 0; s < snapshots; ++s) {
        const std::int32_t row =
            row_of[s * static_cast<std::size_t>(users) + static_cast<std::size_t>(user)];
        if (row < 0) continue;
        const UnixSeconds at = snapshot_times[s];
        data.users[static_cast<std::size_t>(row)] = user;
        data.at[static_cast<std::size_t>(row)] = at;
        data.features.row(row) =
            upgrade_features(engagement_counts(history, user, at)).cast<float>().transpose();
        data.upgraded[row] = upgraded_from_free(history, user, at, at + horizon) ? 1.0 : 0.0;
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

double brier_score(const Eigen::VectorXd& predicted, const Eigen::VectorXd& outcome) {
  if (predicted.size() == 0) return 0.0;
  return (predicted - outcome).squaredNorm() / static_cast<double>(predicted.size());
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
  // their whole label window before the first holdout snapshot. Rows are in snapshot order,
  // so both are blocks of rows (read in place, not copied): training the leading rows,
  // holdout the trailing ones.
  const UnixSeconds holdout_from = times[times.size() - options.holdout_snapshots];
  const auto train_rows = static_cast<Eigen::Index>(
      std::partition_point(all.at.begin(), all.at.end(),
                           [&](UnixSeconds at) { return at + options.horizon <= holdout_from; }) -
      all.at.begin());
  const auto holdout_start = static_cast<Eigen::Index>(
      std::partition_point(all.at.begin(), all.at.end(),
                           [&](UnixSeconds at) { return at < holdout_from; }) -
      all.at.begin());
  const Eigen::Index holdout_rows = all.features.rows() - holdout_start;
  const auto train_features = all.features.topRows(train_rows);
  const auto train_upgraded = all.upgraded.head(train_rows);
  const auto holdout_features = all.features.bottomRows(holdout_rows);
  const Eigen::VectorXd holdout_upgraded = all.upgraded.tail(holdout_rows);
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
  e.train_upgrade_rate = train_upgraded.mean();
  e.holdout_upgrade_rate = holdout_upgraded.mean();
  Eigen::VectorXd predicted = fitted->predict_all(holdout_features);
  Eigen::VectorXd paywall_predicted =
      paywall_fit->predict_all(all.features.block(holdout_start, kPaywallHits14, holdout_rows, 1));
  Eigen::VectorXd base = Eigen::VectorXd::Constant(holdout_rows, e.train_upgrade_rate);
  std::vector<int> labels = to_labels(holdout_upgraded);
  e.model_auc = roc_auc(to_vector(predicted), labels);
  e.model_brier = brier_score(predicted, holdout_upgraded);
  e.paywall_auc = roc_auc(to_vector(paywall_predicted), labels);
  e.paywall_brier = brier_score(paywall_predicted, holdout_upgraded);
  e.base_rate_auc = roc_auc(to_vector(base), labels);
  e.base_rate_brier = brier_score(base, holdout_upgraded);
  model.calibration = MonotoneCalibration::fit(to_vector(predicted), to_vector(holdout_upgraded),
                                               2.0, e.train_upgrade_rate);

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
