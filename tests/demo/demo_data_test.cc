#include "demo/demo_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "store/store.h"

namespace fulcrum::demo {
namespace {

constexpr UnixSeconds kEnd = 1767225600;  // 2026-01-01T00:00:00Z

DemoOptions small_options(std::int64_t users = 2000, int days = 35) {
  DemoOptions options;
  options.users = users;
  options.days = days;
  options.seed = 42;
  options.end = kEnd;
  options.batch_records = 50'000;
  return options;
}

// The whole dataset in memory (small sizes only) plus the sink calls seen.
struct Collected {
  EventBatch all;
  std::vector<std::size_t> batch_sizes;
  DemoSummary summary;
};

template <typename T>
void append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

Collected collect(const DemoOptions& options) {
  Collected out;
  auto summary = generate_demo_data(options, [&](const EventBatch& batch) {
    out.batch_sizes.push_back(batch.size());
    append(out.all.users, batch.users);
    append(out.all.features, batch.features);
    append(out.all.feature_usage, batch.feature_usage);
    append(out.all.sessions, batch.sessions);
    append(out.all.subscription_changes, batch.subscription_changes);
    append(out.all.payments, batch.payments);
    append(out.all.paywall_hits, batch.paywall_hits);
    append(out.all.exposures, batch.exposures);
    append(out.all.metric_events, batch.metric_events);
    return Status::ok();
  });
  EXPECT_TRUE(summary.is_ok()) << summary.status().to_string();
  if (summary.is_ok()) out.summary = std::move(summary).value();
  return out;
}

const Collected& dataset() {
  static const Collected* const kData = new Collected(collect(small_options()));
  return *kData;
}

int day_of(const DemoSummary& summary, UnixSeconds at) {
  return static_cast<int>((at - summary.start) / kSecondsPerDay);
}

TEST(DemoDataTest, SameSeedGivesIdenticalDataWhateverTheBatchSize) {
  DemoOptions options = small_options(600, 28);
  const Collected first = collect(options);
  options.batch_records = 777;
  const Collected second = collect(options);
  EXPECT_EQ(first.summary.checksum, second.summary.checksum);
  EXPECT_EQ(first.summary.events(), second.summary.events());
  EXPECT_EQ(first.summary.truth.churners.size(), second.summary.truth.churners.size());
  EXPECT_GT(second.batch_sizes.size(), first.batch_sizes.size());
  options.seed = 43;
  const Collected other_seed = collect(options);
  EXPECT_NE(first.summary.checksum, other_seed.summary.checksum);
  options.seed = 42;
  options.end += kSecondsPerDay;
  EXPECT_NE(first.summary.checksum, collect(options).summary.checksum);
}

TEST(DemoDataTest, CountsAndBatchesMatchWhatTheSinkReceived) {
  const Collected& data = dataset();
  const DemoSummary& s = data.summary;
  EXPECT_EQ(s.features, 20);
  EXPECT_EQ(static_cast<std::size_t>(s.feature_usage), data.all.feature_usage.size());
  EXPECT_EQ(static_cast<std::size_t>(s.sessions), data.all.sessions.size());
  EXPECT_EQ(static_cast<std::size_t>(s.payments), data.all.payments.size());
  EXPECT_EQ(static_cast<std::size_t>(s.metric_events), data.all.metric_events.size());
  EXPECT_EQ(s.batches, static_cast<std::int64_t>(data.batch_sizes.size()));
  for (std::size_t size : data.batch_sizes) EXPECT_LE(size, 50'000u + 200u);
  // Every event lies inside the period; users start at their signup.
  for (const auto& e : data.all.sessions) {
    EXPECT_GE(e.at, s.start);
    EXPECT_LT(e.at, s.end);
  }
  std::set<std::string> ids;
  for (const auto& u : data.all.users) ids.insert(u.user_id);
  EXPECT_EQ(ids.size(), 2000u);
  // Roughly 35 events per user-month at the default density.
  EXPECT_GT(s.events(), 2000 * 35 * 0.8);
  EXPECT_LT(s.events(), 2000 * 35 * 2.0);
}

// Weekly active users of a feature, weeks counted from the period start.
std::vector<double> weekly_active(const Collected& data, const std::string& feature) {
  std::vector<std::set<std::string>> users(5);
  for (const auto& e : data.all.feature_usage) {
    const int week = day_of(data.summary, e.at) / 7;
    if (e.feature == feature && week < 5) users[week].insert(e.user_id);
  }
  std::vector<double> out;
  for (const auto& week : users) out.push_back(static_cast<double>(week.size()));
  return out;
}

TEST(DemoDataTest, LegacyStatementsDeclinesInstantSavingsGrowsOthersStable) {
  const auto legacy = weekly_active(dataset(), "legacy_statements");
  const auto instant = weekly_active(dataset(), "instant_savings");
  const auto overview = weekly_active(dataset(), "account_overview");
  for (int week = 1; week < 5; ++week) {
    EXPECT_LT(legacy[week], legacy[week - 1]) << "week " << week;
  }
  // About 6 %/week down and 5 %/week up: over four weeks 0.78 and 1.22.
  EXPECT_LT(legacy[4] / legacy[0], 0.85);
  EXPECT_GT(legacy[4] / legacy[0], 0.70);
  EXPECT_GT(instant[4] / instant[0], 1.12);
  EXPECT_LT(instant[4] / instant[0], 1.35);
  EXPECT_NEAR(overview[4] / overview[0], 1.0, 0.06);
}

TEST(DemoDataTest, ClusterFeaturesAreUsedTogether) {
  std::map<std::string, std::set<std::string>> users_of;
  std::set<std::string> all_users;
  for (const auto& e : dataset().all.feature_usage) {
    users_of[e.feature].insert(e.user_id);
    all_users.insert(e.user_id);
  }
  auto lift = [&](const std::string& given, const std::string& target) {
    const auto& a = users_of[given];
    const auto& b = users_of[target];
    std::size_t both = 0;
    for (const auto& u : a) both += b.count(u);
    const double conditional = static_cast<double>(both) / static_cast<double>(a.size());
    const double base = static_cast<double>(b.size()) / static_cast<double>(all_users.size());
    return conditional / base;
  };
  EXPECT_GT(lift("budgets", "savings_goals"), 1.8);
  EXPECT_GT(lift("bill_pay", "scheduled_transfers"), 1.8);
  EXPECT_GT(lift("investments_portfolio", "crypto_trading"), 1.8);
  EXPECT_LT(lift("budgets", "crypto_trading"), 1.3);
}

TEST(DemoDataTest, ChurnersFadeOutAndPaidOnesCancel) {
  const Collected& data = dataset();
  const auto& churners = data.summary.truth.churners;
  ASSERT_GT(churners.size(), 2000 * 0.05);
  ASSERT_LT(churners.size(), 2000 * 0.11);
  std::map<std::string, int> churn_day;
  for (const auto& c : churners) churn_day[c.user_id] = c.churn_day;
  double early = 0, late = 0;
  for (const auto& e : data.all.sessions) {
    auto it = churn_day.find(e.user_id);
    if (it == churn_day.end()) continue;
    const int day = day_of(data.summary, e.at);
    EXPECT_LT(day, it->second) << e.user_id << " active after churning";
    if (it->second < 28) continue;
    if (day >= it->second - 28 && day < it->second - 21) early += 1;
    if (day >= it->second - 7) late += 1;
  }
  EXPECT_LT(late, 0.5 * early);
  std::set<std::string> cancelled;
  for (const auto& e : data.all.subscription_changes) {
    if (e.kind == SubscriptionChangeKind::kCancel) cancelled.insert(e.user_id);
  }
  int failures_checked = 0;
  for (const auto& c : churners) {
    EXPECT_EQ(cancelled.count(c.user_id), c.paid ? 1u : 0u) << c.user_id;
    if (!c.unrecovered_payment_failure) continue;
    int failed = 0, succeeded_after_failure = 0;
    for (const auto& p : data.all.payments) {
      if (p.user_id != c.user_id) continue;
      if (!p.succeeded) ++failed;
      if (p.succeeded && failed > 0) ++succeeded_after_failure;
    }
    EXPECT_GE(failed, 1) << c.user_id;
    EXPECT_EQ(succeeded_after_failure, 0) << c.user_id;
    ++failures_checked;
  }
  EXPECT_GT(failures_checked, 0);
}

TEST(DemoDataTest, UpgradersHitPaywallsMoreBeforeUpgradingAndTheirTierIsUpdated) {
  const Collected& data = dataset();
  const auto& upgraders = data.summary.truth.upgraders;
  ASSERT_GT(upgraders.size(), 2000 * 0.7 * 0.05);
  std::map<std::string, const DemoGroundTruth::Upgrader*> by_id;
  for (const auto& u : upgraders) by_id[u.user_id] = &u;
  double early = 0, late = 0;
  for (const auto& e : data.all.paywall_hits) {
    auto it = by_id.find(e.user_id);
    if (it == by_id.end() || it->second->upgrade_day < 21) continue;
    const int day = day_of(data.summary, e.at);
    const int upgrade = it->second->upgrade_day;
    if (day >= upgrade - 21 && day < upgrade - 14) early += 1;
    if (day >= upgrade - 7 && day < upgrade) late += 1;
  }
  EXPECT_GT(late, 3 * std::max(1.0, early));
  // The last user record for an upgrader carries the new tier, and an upgrade event exists.
  std::map<std::string, Tier> last_tier;
  for (const auto& u : data.all.users) last_tier[u.user_id] = u.tier;
  std::set<std::string> upgraded;
  for (const auto& e : data.all.subscription_changes) {
    if (e.kind == SubscriptionChangeKind::kUpgrade) upgraded.insert(e.user_id);
  }
  for (const auto& u : upgraders) {
    EXPECT_EQ(last_tier[u.user_id], u.to_tier) << u.user_id;
    EXPECT_EQ(upgraded.count(u.user_id), 1u) << u.user_id;
  }
}

// About 4 % of established premium users move down to plus: one downgrade event each, their
// last user record says plus, and from then on they pay the plus price.
TEST(DemoDataTest, SomePremiumUsersDowngradeToPlusAndPayThePlusPrice) {
  const Collected& data = dataset();
  std::map<std::string, UnixSeconds> downgraded_at;
  for (const auto& e : data.all.subscription_changes) {
    if (e.kind != SubscriptionChangeKind::kDowngrade) continue;
    EXPECT_EQ(e.from_tier, Tier::kPremium);
    EXPECT_EQ(e.to_tier, Tier::kPlus);
    EXPECT_TRUE(downgraded_at.emplace(e.user_id, e.at).second) << "twice: " << e.user_id;
  }
  EXPECT_GE(downgraded_at.size(), 2u);  // 2000 users, ~10 % premium, 4 % of them
  EXPECT_LE(downgraded_at.size(), 20u);
  std::map<std::string, Tier> last_tier;
  for (const auto& u : data.all.users) last_tier[u.user_id] = u.tier;
  std::map<std::string, std::set<std::int64_t>> prices_after;
  for (const auto& e : data.all.payments) {
    auto it = downgraded_at.find(e.user_id);
    if (it != downgraded_at.end() && e.at > it->second) prices_after[e.user_id].insert(e.amount_minor);
  }
  std::set<std::int64_t> plus_prices;
  for (const auto& [user, at] : downgraded_at) {
    EXPECT_EQ(last_tier[user], Tier::kPlus) << user;
    plus_prices.insert(prices_after[user].begin(), prices_after[user].end());
  }
  EXPECT_EQ(plus_prices.size(), 1u);  // one price after downgrading: plus
}

TEST(DemoDataTest, AbandonersStopUsingTheirFeatureForTheLastThreeWeeks) {
  const Collected& data = dataset();
  const auto& abandonments = data.summary.truth.abandonments;
  ASSERT_FALSE(abandonments.empty());
  std::map<std::pair<std::string, std::string>, int> last_use;
  std::map<std::pair<std::string, std::string>, int> uses;
  for (const auto& e : data.all.feature_usage) {
    const auto key = std::make_pair(e.user_id, e.feature);
    last_use[key] = std::max(last_use[key], day_of(data.summary, e.at));
    ++uses[key];
  }
  for (const auto& a : abandonments) {
    const auto key = std::make_pair(a.user_id, a.feature);
    EXPECT_LE(last_use[key], a.last_use_day) << a.user_id << " " << a.feature;
    EXPECT_LE(a.last_use_day, 35 - 21 - 1);
  }
}

TEST(DemoDataTest, ExperimentExposuresAreConsistentAndConversionsFollowThem) {
  const Collected& data = dataset();
  std::map<std::pair<std::string, std::string>, std::string> variant_of;
  std::map<std::pair<std::string, std::string>, UnixSeconds> exposed_at;
  std::map<std::string, std::map<std::string, int>> per_variant;
  for (const auto& e : data.all.exposures) {
    const auto key = std::make_pair(e.experiment_id, e.user_id);
    EXPECT_EQ(variant_of.count(key), 0u) << "exposed twice";
    variant_of[key] = e.variant;
    exposed_at[key] = e.at;
    ++per_variant[e.experiment_id][e.variant];
  }
  ASSERT_EQ(per_variant["exp_onboarding_checklist"].size(), 2u);
  ASSERT_EQ(per_variant["exp_savings_nudge"].size(), 3u);
  const double control = per_variant["exp_onboarding_checklist"]["control"];
  const double variant = per_variant["exp_onboarding_checklist"]["variant"];
  EXPECT_NEAR(control / (control + variant), 0.5, 0.05);
  EXPECT_NEAR((control + variant) / 2000, 0.4, 0.05);
  int conversions = 0, pre_values = 0;
  for (const auto& m : data.all.metric_events) {
    const std::string experiment =
        m.metric == "savings_goal_created" ? "exp_savings_nudge" : "exp_onboarding_checklist";
    const auto key = std::make_pair(experiment, m.user_id);
    ASSERT_EQ(exposed_at.count(key), 1u) << m.metric << " for unexposed " << m.user_id;
    if (m.metric == "revenue_per_user") {
      EXPECT_GT(m.value, 0);
      if (m.at < exposed_at[key]) ++pre_values;
    } else {
      EXPECT_EQ(m.value, 1.0);
      EXPECT_GE(m.at, exposed_at[key]);
      ++conversions;
    }
  }
  EXPECT_GT(conversions, 0);
  EXPECT_GT(pre_values, 0);
}

TEST(DemoDataTest, IngestsIntoARealSqliteStore) {
  const auto directory =
      std::filesystem::temp_directory_path() / ("fulcrum_demo_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  {
    auto store = open_store((directory / "demo.db").string());
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    DemoOptions options = small_options(300, 28);
    auto summary = generate_demo_data(
        options, [&](const EventBatch& batch) { return (*store)->ingest(batch).status(); });
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    EXPECT_EQ(*(*store)->count_users(), 300);
    EXPECT_EQ((*store)->list_features()->size(), 20u);
    std::int64_t sessions = 0, usage = 0;
    ASSERT_TRUE((*store)->scan_sessions({}, [&](const SessionEvent&) { ++sessions; }).is_ok());
    ASSERT_TRUE(
        (*store)->scan_feature_usage({}, [&](const FeatureUsageEvent&) { ++usage; }).is_ok());
    EXPECT_EQ(sessions, summary->sessions);
    EXPECT_EQ(usage, summary->feature_usage);
    EXPECT_LT(*(*store)->latest_event_time(), kEnd);
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace fulcrum::demo
