// Upgrade propensity: the IRLS fit against statsmodels, planted effects, and the time-split
// evaluation against the paywall-hits-only rule and the base rate.
#include "lifecycle/upgrade_propensity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "recommend/synthetic.h"
#include "store/store.h"

namespace fulcrum {
namespace {

struct Fixture {
  EventBatch history;
  UnixSeconds now = 0;
  std::unique_ptr<UsageHistory> usage;
};

const Fixture& fixture() {
  static const Fixture* f = [] {
    auto* fx = new Fixture;
    SyntheticUsageOptions options;
    options.users = 2500;
    options.upgrader_share = 0.35;
    fx->history = make_synthetic_usage(options);
    fx->now = options.start + options.days * kSecondsPerDay;
    fx->usage = std::make_unique<UsageHistory>(UsageHistory::from_events(fx->history));
    return fx;
  }();
  return *f;
}

std::string run_command(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return "";
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe.get())) out += buffer;
  return out;
}

TEST(UpgradePropensity, IrlsMatchesStatsmodelsLogit) {
  const Fixture& f = fixture();
  UpgradePropensityOptions options;
  auto times = upgrade_snapshot_times(f.now, options);
  UpgradeDataset data = upgrade_dataset(*f.usage, {times[0], times[4]}, options.horizon);
  ASSERT_GT(data.upgraded.sum(), 20);
  auto model = fit_logistic_irls(data.features, data.upgraded, /*l2=*/0.0, 100, 1e-10);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  ASSERT_TRUE(model->converged);

  auto path = std::filesystem::temp_directory_path() /
              ("upgrade_irls_" + std::to_string(::getpid()) + ".csv");
  {
    std::ofstream csv(path);
    csv.precision(17);
    for (Eigen::Index i = 0; i < data.features.rows(); ++i) {
      csv << data.upgraded[i];
      for (Eigen::Index j = 0; j < data.features.cols(); ++j) csv << "," << data.features(i, j);
      csv << "\n";
    }
  }
  // Same standardisation as LogisticModel (population standard deviation), no penalty.
  std::string script =
      "import numpy as np, statsmodels.api as sm\n"
      "d = np.loadtxt('" +
      path.string() +
      "', delimiter=',')\n"
      "y, x = d[:, 0], d[:, 1:]\n"
      "s = x.std(axis=0); s[s < 1e-12] = 1.0\n"
      "z = (x - x.mean(axis=0)) / s\n"
      "r = sm.Logit(y, sm.add_constant(z)).fit(disp=0, method='newton', maxiter=100, tol=1e-12)\n"
      "print(' '.join(repr(float(v)) for v in r.params))\n";
  auto script_path = path;
  script_path.replace_extension(".py");
  std::ofstream(script_path) << script;
  std::string output = run_command("/usr/bin/python3 " + script_path.string() + " 2>&1");
  std::filesystem::remove(path);
  std::filesystem::remove(script_path);
  std::istringstream in(output);
  std::vector<double> reference;
  double v;
  while (in >> v) reference.push_back(v);
  ASSERT_EQ(reference.size(), static_cast<std::size_t>(kUpgradeFeatureCount + 1))
      << "statsmodels output: " << output;
  EXPECT_NEAR(model->intercept, reference[0], 1e-5);
  for (int j = 0; j < kUpgradeFeatureCount; ++j) {
    EXPECT_NEAR(model->coefficients[j], reference[j + 1], 1e-5) << upgrade_feature_names()[j];
  }
}

TEST(UpgradePropensity, CountsWindowsAroundSnapshot) {
  EventBatch history;
  User user;
  user.user_id = "u";
  user.signup_at = 0;
  history.users.push_back(user);
  history.features.push_back({"savings_goals", Tier::kPremium, 0, 500, "savings"});
  const UnixSeconds t = 100 * kSecondsPerDay;
  for (int d : {1, 2, 3, 20}) history.sessions.push_back({"u", t - d * kSecondsPerDay + 5, 60});
  history.sessions.push_back({"u", t + 10, 60});  // after the snapshot: ignored
  for (int d : {1, 5, 16}) {
    history.paywall_hits.push_back({"u", "savings_goals", t - d * kSecondsPerDay});
  }
  history.feature_usage.push_back({"u", "savings_goals", t - 2 * kSecondsPerDay, 4});
  history.feature_usage.push_back({"u", "savings_goals", t - 40 * kSecondsPerDay, 3});
  history.payments.push_back({"u", t - kSecondsPerDay, false, 100});
  history.payments.push_back({"u", t - 2 * kSecondsPerDay, true, 100});
  history.subscription_changes.push_back(
      {"u", t + 3 * kSecondsPerDay, SubscriptionChangeKind::kUpgrade, Tier::kFree, Tier::kPlus});
  const UsageHistory usage = UsageHistory::from_events(history);
  EngagementCounts c = engagement_counts(usage, 0, t);
  EXPECT_EQ(c.sessions_14, 3);
  EXPECT_EQ(c.sessions_prev_14, 1);
  EXPECT_EQ(c.active_days_28, 4);  // days -1, -2, -3, -20 (usage on -2 shares a day)
  EXPECT_EQ(c.paywall_14, 2);
  EXPECT_EQ(c.paywall_prev_14, 1);
  EXPECT_EQ(c.usage_28, 4);
  EXPECT_EQ(c.usage_prev_28, 3);
  EXPECT_EQ(c.transactions_28, 1);
  EXPECT_EQ(c.failed_payments_28, 1);
  EXPECT_EQ(c.distinct_features_28, 1);
  EXPECT_DOUBLE_EQ(c.tenure_days, 100);
  ASSERT_EQ(c.paywalled_features.size(), 1u);
  EXPECT_TRUE(upgraded_from_free(usage, 0, t, t + 7 * kSecondsPerDay));
  EXPECT_FALSE(upgraded_from_free(usage, 0, t + 4 * kSecondsPerDay, t + 9 * kSecondsPerDay));
  auto x = upgrade_features(c);
  EXPECT_NEAR(x[kSessionTrend], std::log(4.0 / 2.0), 1e-12);
  EXPECT_NEAR(x[kPaywallHits14], std::log1p(2.0), 1e-12);
}

TEST(UpgradePropensity, BeatsPaywallRuleAndBaseRateOnTimeSplit) {
  const Fixture& f = fixture();
  auto model = train_upgrade_propensity(*f.usage, f.now, UpgradePropensityOptions{});
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  const UpgradeEvaluation& e = model->evaluation;
  EXPECT_GT(e.holdout_rows, 500);
  EXPECT_GT(e.train_rows, e.holdout_rows);
  EXPECT_LE(e.train_until, e.holdout_from);
  EXPECT_GT(e.model_auc, 0.7);
  EXPECT_GT(e.model_auc, e.paywall_auc);
  EXPECT_NEAR(e.base_rate_auc, 0.5, 1e-12);
  EXPECT_LT(e.model_brier, e.base_rate_brier);
  EXPECT_LT(e.model_brier, e.paywall_brier);
  // Planted effect: recent paywall hits raise the propensity.
  EXPECT_GT(model->logistic.coefficients[kPaywallHits14], 0.0);
  auto json = e.to_json();
  EXPECT_TRUE(json["model"].contains("auc"));
  EXPECT_TRUE(json["paywall_hits_only"].contains("brier"));
}

// A snapshot's block of rows holds its eligible users (signed up before it, free then),
// however the history is sliced; a store walked a few users at a time trains the model of
// the in-memory history (within a block the rows follow the walk, so sums agree to rounding).
TEST(UpgradePropensity, SnapshotBlocksAndStreamedSlicesTrainTheSameModel) {
  auto path = std::filesystem::temp_directory_path() /
              ("upgrade_slices_" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(path);
  auto store = open_store(path.string());
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  SyntheticUsageOptions synthetic;
  synthetic.users = 600;
  synthetic.upgrader_share = 0.4;
  ASSERT_TRUE((*store)->ingest(make_synthetic_usage(synthetic)).is_ok());
  const UnixSeconds now = synthetic.start + synthetic.days * kSecondsPerDay;
  const UpgradePropensityOptions options;
  auto loaded = UsageHistory::load(**store);
  auto streamed = UsageHistory::open(**store, {}, /*keys_per_slice=*/7);
  ASSERT_TRUE(loaded.is_ok() && streamed.is_ok());

  const auto times = upgrade_snapshot_times(analysis_end(now), options);
  auto rows = upgrade_dataset_of(*streamed, times, options.horizon);
  ASSERT_TRUE(rows.is_ok()) << rows.status().to_string();
  ASSERT_EQ(rows->snapshot_begin.size(), times.size() + 1);
  for (std::size_t s = 0; s < times.size(); ++s) {
    Eigen::Index eligible = 0;
    for (int u = 0; u < loaded->user_count(); ++u) {
      eligible +=
          loaded->user(u).signup_at < times[s] && loaded->tier_at(u, times[s]) == Tier::kFree;
    }
    EXPECT_EQ(rows->snapshot_begin[s + 1] - rows->snapshot_begin[s], eligible) << "snapshot " << s;
  }
  EXPECT_EQ(rows->features.rows(), rows->snapshot_begin.back());
  EXPECT_EQ(rows->upgraded.size(), rows->features.rows());

  auto whole = train_upgrade_propensity(*loaded, now, options);
  auto sliced = train_upgrade_propensity(*streamed, now, options);
  ASSERT_TRUE(whole.is_ok()) << whole.status().to_string();
  ASSERT_TRUE(sliced.is_ok()) << sliced.status().to_string();
  const UpgradeEvaluation& a = whole->evaluation;
  const UpgradeEvaluation& b = sliced->evaluation;
  EXPECT_EQ(a.train_rows, b.train_rows);
  EXPECT_EQ(a.holdout_rows, b.holdout_rows);
  EXPECT_DOUBLE_EQ(a.train_upgrade_rate, b.train_upgrade_rate);
  EXPECT_NEAR(a.model_auc, b.model_auc, 1e-12);
  EXPECT_NEAR(a.model_brier, b.model_brier, 1e-12);
  EXPECT_NEAR(a.paywall_brier, b.paywall_brier, 1e-12);
  ASSERT_EQ(a.coefficients.size(), b.coefficients.size());
  for (std::size_t j = 0; j < a.coefficients.size(); ++j) {
    EXPECT_NEAR(a.coefficients[j].second, b.coefficients[j].second, 1e-9)
        << a.coefficients[j].first;
  }
  store->reset();
  std::filesystem::remove(path);
}

TEST(UpgradePropensity, BrierScoreAndOptionValidation) {
  Eigen::VectorXd p(4), y(4);
  p << 0.1, 0.9, 0.5, 0.0;
  y << 0, 1, 1, 0;
  EXPECT_NEAR(brier_score(p, y), (0.01 + 0.01 + 0.25 + 0) / 4, 1e-12);
  UpgradePropensityOptions options;
  options.snapshots = 3;
  EXPECT_EQ(options.validate().field(), "snapshots");
  options = {};
  options.horizon = 0;
  EXPECT_EQ(options.validate().field(), "horizon");
}

}  // namespace
}  // namespace fulcrum
