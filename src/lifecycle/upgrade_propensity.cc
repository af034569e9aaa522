#include "lifecycle/upgrade_propensity.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace fulcrum {
namespace {

constexpr UnixSeconds kDays14 = 14 * kSecondsPerDay;
constexpr UnixSeconds kDays28 = 28 * kSecondsPerDay;

template <typename T>
std::size_t count_between(const std::vector<T>& sorted, UnixSeconds from, UnixSeconds to,
                          UnixSeconds (*key)(const T&)) {
  auto lo =
      std::partition_point(sorted.begin(), sorted.end(), [&](const T& v) { return key(v) < from; });
  auto hi = std::partition_point(lo, sorted.end(), [&](const T& v) { return key(v) < to; });
  return static_cast<std::size_t>(hi - lo);
}

UnixSeconds plain_key(const UnixSeconds& t) { return t; }
template <typename V>
UnixSeconds first_key(const std::pair<UnixSeconds, V>& p) {
  return p.first;
}

std::vector<double> to_vector(const Eigen::VectorXd& v) {
  return std::vector<double>(v.data(), v.data() + v.size());
}
std::vector<int> to_labels(const Eigen::VectorXd& v) {
  std::vector<int> labels(static_cast<std::size_t>(v.size()));
  for (Eigen::Index i = 0; i < v.size(); ++i) labels[static_cast<std::size_t>(i)] = v[i] > 0.5;
  return labels;
}

UpgradeDataset select_rows(const UpgradeDataset& data, const std::vector<Eigen::Index>& rows) {
  UpgradeDataset out;
  out.features.resize(static_cast<Eigen::Index>(rows.size()), data.features.cols());
  out.upgraded.resize(static_cast<Eigen::Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    out.users.push_back(data.users[rows[i]]);
    out.at.push_back(data.at[rows[i]]);
    out.features.row(static_cast<Eigen::Index>(i)) = data.features.row(rows[i]);
    out.upgraded[static_cast<Eigen::Index>(i)] = data.upgraded[rows[i]];
  }
  return out;
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

UserTimelines UserTimelines::build(const EventBatch& history) {
  UserTimelines t;
  t.index_ = ActivityIndex::build(history);
  t.timelines_.resize(t.index_.users.size());
  std::vector<std::vector<std::pair<UnixSeconds, std::int64_t>>> usage(t.timelines_.size());
  for (const auto& e : history.feature_usage) {
    int u = t.index_.user(e.user_id);
    if (u < 0) continue;
    usage[u].push_back({e.at, e.count});
    t.timelines_[u].usage_features.push_back({e.at, t.index_.feature(e.feature)});
    t.timelines_[u].active_days.push_back(floor_to_day(e.at));
  }
  for (const auto& e : history.sessions) {
    int u = t.index_.user(e.user_id);
    if (u < 0) continue;
    t.timelines_[u].sessions.push_back(e.at);
    t.timelines_[u].active_days.push_back(floor_to_day(e.at));
  }
  for (const auto& e : history.paywall_hits) {
    int u = t.index_.user(e.user_id);
    if (u >= 0) t.timelines_[u].paywall.push_back({e.at, t.index_.feature(e.feature)});
  }
  for (const auto& e : history.payments) {
    int u = t.index_.user(e.user_id);
    if (u >= 0) t.timelines_[u].payments.push_back({e.at, e.succeeded});
  }
  for (std::size_t u = 0; u < t.timelines_.size(); ++u) {
    Timeline& line = t.timelines_[u];
    std::sort(line.sessions.begin(), line.sessions.end());
    std::sort(line.active_days.begin(), line.active_days.end());
    line.active_days.erase(std::unique(line.active_days.begin(), line.active_days.end()),
                           line.active_days.end());
    std::sort(line.usage_features.begin(), line.usage_features.end());
    std::sort(line.paywall.begin(), line.paywall.end());
    std::sort(line.payments.begin(), line.payments.end());
    std::sort(usage[u].begin(), usage[u].end());
    std::int64_t total = 0;
    for (const auto& [at, count] : usage[u]) {
      total += count;
      line.usage_cumulative.push_back({at, total});
    }
  }
  return t;
}

EngagementCounts UserTimelines::counts(int user, UnixSeconds at) const {
  const Timeline& line = timelines_[user];
  EngagementCounts c;
  c.active_days_28 =
      static_cast<double>(count_between(line.active_days, at - kDays28, at, plain_key));
  c.sessions_14 = static_cast<double>(count_between(line.sessions, at - kDays14, at, plain_key));
  c.sessions_prev_14 =
      static_cast<double>(count_between(line.sessions, at - kDays28, at - kDays14, plain_key));
  c.paywall_14 = static_cast<double>(count_between(line.paywall, at - kDays14, at, first_key<int>));
  c.paywall_prev_14 =
      static_cast<double>(count_between(line.paywall, at - kDays28, at - kDays14, first_key<int>));
  auto cumulative_before = [&](UnixSeconds t) -> std::int64_t {
    auto it = std::partition_point(line.usage_cumulative.begin(), line.usage_cumulative.end(),
                                   [&](const auto& p) { return p.first < t; });
    return it == line.usage_cumulative.begin() ? 0 : std::prev(it)->second;
  };
  c.usage_28 = static_cast<double>(cumulative_before(at) - cumulative_before(at - kDays28));
  c.usage_prev_28 =
      static_cast<double>(cumulative_before(at - kDays28) - cumulative_before(at - 2 * kDays28));
  auto pay_lo = std::partition_point(line.payments.begin(), line.payments.end(),
                                     [&](const auto& p) { return p.first < at - kDays28; });
  for (auto it = pay_lo; it != line.payments.end() && it->first < at; ++it) {
    (it->second ? c.transactions_28 : c.failed_payments_28) += 1;
  }
  c.tenure_days =
      static_cast<double>(at - index_.users[user]->signup_at) / static_cast<double>(kSecondsPerDay);
  std::vector<bool> seen(index_.features.size(), false);
  auto use_lo = std::partition_point(line.usage_features.begin(), line.usage_features.end(),
                                     [&](const auto& p) { return p.first < at - kDays28; });
  for (auto it = use_lo; it != line.usage_features.end() && it->first < at; ++it) {
    if (it->second >= 0 && !seen[it->second]) {
      seen[it->second] = true;
      c.distinct_features_28 += 1;
    }
  }
  std::map<int, int> hits;
  auto wall_lo = std::partition_point(line.paywall.begin(), line.paywall.end(),
                                      [&](const auto& p) { return p.first < at - kDays28; });
  for (auto it = wall_lo; it != line.paywall.end() && it->first < at; ++it) {
    if (it->second >= 0) hits[it->second] += 1;
  }
  std::vector<std::pair<int, int>> ranked;
  for (const auto& [feature, n] : hits) ranked.push_back({-n, feature});
  std::sort(ranked.begin(), ranked.end());
  for (const auto& [negative_count, feature] : ranked) {
    c.paywalled_features.push_back(index_.features[feature].name);
  }
  return c;
}

bool UserTimelines::upgraded_from_free(int user, UnixSeconds from, UnixSeconds to) const {
  for (const auto& change : index_.changes_by_user[user]) {
    if (change.at >= from && change.at < to && change.kind == SubscriptionChangeKind::kUpgrade &&
        change.from_tier == Tier::kFree) {
      return true;
    }
  }
  return false;
}

UpgradeDataset upgrade_dataset(const UserTimelines& timelines,
                               const std::vector<UnixSeconds>& snapshot_times,
                               UnixSeconds horizon) {
  UpgradeDataset data;
  std::vector<Eigen::VectorXd> rows;
  std::vector<double> labels;
  const auto& index = timelines.index();
  for (UnixSeconds at : snapshot_times) {
    for (std::size_t u = 0; u < index.users.size(); ++u) {
      int user = static_cast<int>(u);
      if (index.users[u]->signup_at >= at || index.tier_at(user, at) != Tier::kFree) continue;
      data.users.push_back(user);
      data.at.push_back(at);
      rows.push_back(upgrade_features(timelines.counts(user, at)));
      labels.push_back(timelines.upgraded_from_free(user, at, at + horizon) ? 1.0 : 0.0);
    }
  }
  data.features.resize(static_cast<Eigen::Index>(rows.size()), kUpgradeFeatureCount);
  data.upgraded.resize(static_cast<Eigen::Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    data.features.row(static_cast<Eigen::Index>(i)) = rows[i].transpose();
    data.upgraded[static_cast<Eigen::Index>(i)] = labels[i];
  }
  return data;
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

Result<UpgradePropensityModel> train_upgrade_propensity(const UserTimelines& timelines,
                                                        UnixSeconds now,
                                                        const UpgradePropensityOptions& options) {
  FULCRUM_RETURN_IF_ERROR(options.validate());
  std::vector<UnixSeconds> times = upgrade_snapshot_times(now, options);
  UpgradeDataset all = upgrade_dataset(timelines, times, options.horizon);
  // Time split: holdout = the last holdout_snapshots snapshots; training rows must have
  // their whole label window before the first holdout snapshot.
  const UnixSeconds holdout_from = times[times.size() - options.holdout_snapshots];
  std::vector<Eigen::Index> train_rows, holdout_rows;
  for (Eigen::Index i = 0; i < all.features.rows(); ++i) {
    if (all.at[i] >= holdout_from) {
      holdout_rows.push_back(i);
    } else if (all.at[i] + options.horizon <= holdout_from) {
      train_rows.push_back(i);
    }
  }
  UpgradeDataset train = select_rows(all, train_rows);
  UpgradeDataset holdout = select_rows(all, holdout_rows);
  if (train.upgraded.size() == 0 || train.upgraded.sum() == 0) {
    return failed_precondition("no upgrades from free in the training snapshots");
  }
  if (holdout.upgraded.size() == 0) return failed_precondition("no free users in the holdout");
  auto fitted = fit_logistic_irls(train.features, train.upgraded, options.l2);
  if (!fitted.is_ok()) return fitted.status();
  Eigen::MatrixXd paywall_only = train.features.col(kPaywallHits14);
  auto paywall_fit = fit_logistic_irls(paywall_only, train.upgraded, options.l2);
  if (!paywall_fit.is_ok()) return paywall_fit.status();

  UpgradePropensityModel model;
  UpgradeEvaluation& e = model.evaluation;
  e.train_until = holdout_from;
  e.holdout_from = holdout_from;
  e.holdout_until = now;
  e.train_rows = static_cast<int>(train.upgraded.size());
  e.holdout_rows = static_cast<int>(holdout.upgraded.size());
  e.train_upgrade_rate = train.upgraded.mean();
  e.holdout_upgrade_rate = holdout.upgraded.mean();
  Eigen::VectorXd predicted = fitted->predict_all(holdout.features);
  Eigen::VectorXd paywall_predicted =
      paywall_fit->predict_all(Eigen::MatrixXd(holdout.features.col(kPaywallHits14)));
  Eigen::VectorXd base = Eigen::VectorXd::Constant(holdout.upgraded.size(), e.train_upgrade_rate);
  std::vector<int> labels = to_labels(holdout.upgraded);
  e.model_auc = roc_auc(to_vector(predicted), labels);
  e.model_brier = brier_score(predicted, holdout.upgraded);
  e.paywall_auc = roc_auc(to_vector(paywall_predicted), labels);
  e.paywall_brier = brier_score(paywall_predicted, holdout.upgraded);
  e.base_rate_auc = roc_auc(to_vector(base), labels);
  e.base_rate_brier = brier_score(base, holdout.upgraded);
  model.calibration = MonotoneCalibration::fit(to_vector(predicted), to_vector(holdout.upgraded),
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
