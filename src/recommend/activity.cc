#include "recommend/activity.h"

#include <algorithm>

namespace fulcrum {

Result<EventBatch> load_activity(Store& store, UnixSeconds until) {
  EventBatch batch;
  TimeRange range{0, until};
  FULCRUM_RETURN_IF_ERROR(store.scan_users([&](const User& u) { batch.users.push_back(u); }));
  auto features = store.list_features();
  if (!features.is_ok()) return features.status();
  batch.features = std::move(features).value();
  FULCRUM_RETURN_IF_ERROR(store.scan_feature_usage(
      range, [&](const FeatureUsageEvent& e) { batch.feature_usage.push_back(e); }));
  FULCRUM_RETURN_IF_ERROR(
      store.scan_sessions(range, [&](const SessionEvent& e) { batch.sessions.push_back(e); }));
  FULCRUM_RETURN_IF_ERROR(store.scan_subscription_changes(
      range, [&](const SubscriptionChangeEvent& e) { batch.subscription_changes.push_back(e); }));
  FULCRUM_RETURN_IF_ERROR(
      store.scan_payments(range, [&](const PaymentEvent& e) { batch.payments.push_back(e); }));
  FULCRUM_RETURN_IF_ERROR(store.scan_paywall_hits(
      range, [&](const PaywallHitEvent& e) { batch.paywall_hits.push_back(e); }));
  return batch;
}

ActivityIndex ActivityIndex::build(const EventBatch& history) {
  ActivityIndex index;
  index.users.reserve(history.users.size());
  for (const auto& user : history.users) {
    if (index.user_index.emplace(user.user_id, static_cast<int>(index.users.size())).second) {
      index.users.push_back(&user);
    }
  }
  index.features = history.features;
  std::sort(index.features.begin(), index.features.end(),
            [](const Feature& a, const Feature& b) { return a.name < b.name; });
  index.features.erase(
      std::unique(index.features.begin(), index.features.end(),
                  [](const Feature& a, const Feature& b) { return a.name == b.name; }),
      index.features.end());
  for (std::size_t f = 0; f < index.features.size(); ++f) {
    index.feature_index.emplace(index.features[f].name, static_cast<int>(f));
  }
  index.changes_by_user.resize(index.users.size());
  for (const auto& change : history.subscription_changes) {
    int u = index.user(change.user_id);
    if (u >= 0) index.changes_by_user[u].push_back(change);
  }
  for (auto& changes : index.changes_by_user) {
    std::sort(changes.begin(), changes.end(),
              [](const auto& a, const auto& b) { return a.at < b.at; });
  }
  return index;
}

Tier ActivityIndex::tier_at(int user, UnixSeconds t) const {
  Tier tier = users[user]->tier;
  const auto& changes = changes_by_user[user];
  for (auto it = changes.rbegin(); it != changes.rend() && it->at >= t; ++it) {
    tier = it->from_tier;
  }
  return tier;
}

}  // namespace fulcrum
