// On a small run of the product demo generator (docs/demo-data.md: interest clusters drive
// co-usage; upgraders hit the paywall more and more before upgrading) the recommender must
// beat most-popular on a time split, and the upgrade propensity model must beat the
// paywall-hits-only rule and the base rate.
#include "demo/demo_data.h"

#include <gtest/gtest.h>

#include <iostream>
#include <unordered_map>

#include "lifecycle/upgrade_propensity.h"
#include "recommend/evaluation.h"

namespace fulcrum {
namespace {

constexpr UnixSeconds kEnd = 1'735'689'600;  // 2025-01-01T00:00:00Z

EventBatch demo_history(std::int64_t users, int days) {
  demo::DemoOptions options;
  options.users = users;
  options.days = days;
  options.end = kEnd;
  EventBatch all;
  auto summary = demo::generate_demo_data(options, [&](const EventBatch& batch) {
    auto append = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
    // Users are re-emitted on tier changes: keep the latest record of each.
    append(all.users, batch.users);
    append(all.features, batch.features);
    append(all.feature_usage, batch.feature_usage);
    append(all.sessions, batch.sessions);
    append(all.subscription_changes, batch.subscription_changes);
    append(all.payments, batch.payments);
    append(all.paywall_hits, batch.paywall_hits);
    return Status::ok();
  });
  EXPECT_TRUE(summary.is_ok()) << summary.status().to_string();
  // Later records of a user win (the store upserts the same way).
  std::unordered_map<std::string, std::size_t> latest;
  for (std::size_t i = 0; i < all.users.size(); ++i) latest[all.users[i].user_id] = i;
  std::vector<User> users;
  for (std::size_t i = 0; i < all.users.size(); ++i) {
    if (latest[all.users[i].user_id] == i) users.push_back(all.users[i]);
  }
  all.users = std::move(users);
  return all;
}

TEST(DemoData, RecommenderBeatsMostPopularAndUpgradeModelBeatsBaselines) {
  EventBatch history = demo_history(3000, 90);
  ASSERT_FALSE(history.feature_usage.empty());
  const UsageHistory usage = UsageHistory::from_events(history);
  auto evaluation = evaluate_recommendations(usage, kEnd);
  ASSERT_TRUE(evaluation.is_ok()) << evaluation.status().to_string();
  EXPECT_GT(evaluation->users_evaluated, 50u);
  EXPECT_GT(evaluation->model.ndcg, evaluation->most_popular.ndcg);
  EXPECT_GT(evaluation->model.precision, evaluation->most_popular.precision);
  EXPECT_GT(evaluation->model.recall, evaluation->most_popular.recall);

  UpgradePropensityOptions options;
  options.snapshots = 10;  // 90 days of data: snapshots need 28 days of history before them
  auto upgrade = train_upgrade_propensity(usage, kEnd, options);
  ASSERT_TRUE(upgrade.is_ok()) << upgrade.status().to_string();
  const auto& e = upgrade->evaluation;
  EXPECT_GT(e.model_auc, e.paywall_auc);
  EXPECT_GT(e.model_auc, 0.5);
  EXPECT_LT(e.model_brier, e.base_rate_brier);
  std::cout << "recommendations " << evaluation->to_json().dump() << "\nupgrade "
            << e.to_json().dump() << "\n";
}

}  // namespace
}  // namespace fulcrum
