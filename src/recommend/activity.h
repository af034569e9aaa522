// Plain activity history for the models: every record an analysis reads, loaded once from
// the Store into an EventBatch (I/O at the edge), plus small index helpers shared by the
// recommendation and upgrade-timing models (dense user/feature indices, tier at a time).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/model.h"
#include "store/store.h"

namespace fulcrum {

// Loads users, features and every usage, session, subscription, payment and paywall event
// with at < until. Experiment exposures and metric events are not loaded.
Result<EventBatch> load_activity(Store& store, UnixSeconds until);

// Dense indices over users and features of a history. Features are sorted by name so
// column order is stable across runs.
struct ActivityIndex {
  std::vector<const User*> users;
  std::vector<Feature> features;
  std::unordered_map<std::string, int> user_index;
  std::unordered_map<std::string, int> feature_index;
  // Subscription changes per user, sorted by time (for tier_at).
  std::vector<std::vector<SubscriptionChangeEvent>> changes_by_user;

  static ActivityIndex build(const EventBatch& history);
  int user(const std::string& user_id) const {
    auto it = user_index.find(user_id);
    return it == user_index.end() ? -1 : it->second;
  }
  int feature(const std::string& name) const {
    auto it = feature_index.find(name);
    return it == feature_index.end() ? -1 : it->second;
  }
  // The user's tier just before time t: the current tier with later changes undone.
  Tier tier_at(int user, UnixSeconds t) const;
};

}  // namespace fulcrum
