#include "store/event_identity.h"

#include <functional>
#include <unordered_set>

namespace fulcrum::identity {

namespace {

// Calls visit(kind, records) for each record vector of the batch, in member order (the
// order without_duplicates walks too).
template <typename Visit>
void each_kind(const EventBatch& batch, Visit visit) {
  visit(Kind::kUser, batch.users);
  visit(Kind::kFeature, batch.features);
  visit(Kind::kFeatureUsage, batch.feature_usage);
  visit(Kind::kSession, batch.sessions);
  visit(Kind::kSubscriptionChange, batch.subscription_changes);
  visit(Kind::kPayment, batch.payments);
  visit(Kind::kPaywallHit, batch.paywall_hits);
  visit(Kind::kExposure, batch.exposures);
  visit(Kind::kMetric, batch.metric_events);
}

struct EventIdHash {
  std::size_t operator()(const EventId& id) const {
    return std::hash<std::string_view>()(id.id) * 31 + static_cast<std::size_t>(id.kind);
  }
};
struct EventIdEqual {
  bool operator()(const EventId& a, const EventId& b) const {
    return a.kind == b.kind && a.id == b.id;
  }
};

}  // namespace

std::vector<EventId> ids_of(const EventBatch& batch) {
  std::vector<EventId> ids;
  each_kind(batch, [&](Kind kind, const auto& records) {
    for (const auto& record : records) {
      if (!record.event_id.empty()) ids.push_back({kind, record.event_id});
    }
  });
  return ids;
}

std::string assignment_id(const ExposureEvent& exposure) {
  // Length-prefixed, so no experiment/user pair can be confused with another whatever
  // characters the ids hold.
  return std::to_string(exposure.experiment_id.size()) + ":" + exposure.experiment_id +
         std::to_string(exposure.user_id.size()) + ":" + exposure.user_id + exposure.variant;
}

std::vector<std::size_t> first_occurrences(const std::vector<EventId>& ids,
                                           std::vector<bool>& is_new) {
  is_new.assign(ids.size(), true);
  std::vector<std::size_t> first;
  first.reserve(ids.size());
  std::unordered_set<EventId, EventIdHash, EventIdEqual> seen;
  seen.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (seen.insert(ids[i]).second) {
      first.push_back(i);
    } else {
      is_new[i] = false;
    }
  }
  return first;
}

std::optional<EventBatch> without_duplicates(const EventBatch& batch,
                                             const std::vector<bool>& is_new,
                                             std::int64_t& duplicates) {
  duplicates = 0;
  for (bool fresh : is_new) duplicates += fresh ? 0 : 1;
  if (duplicates == 0) return std::nullopt;
  std::size_t next_id = 0;  // index into is_new, in ids_of order (the member order below)
  auto keep = [&](const auto& records, auto& kept) {
    kept.reserve(records.size());
    for (const auto& record : records) {
      if (!record.event_id.empty() && !is_new[next_id++]) continue;
      kept.push_back(record);
    }
  };
  EventBatch kept;
  keep(batch.users, kept.users);
  keep(batch.features, kept.features);
  keep(batch.feature_usage, kept.feature_usage);
  keep(batch.sessions, kept.sessions);
  keep(batch.subscription_changes, kept.subscription_changes);
  keep(batch.payments, kept.payments);
  keep(batch.paywall_hits, kept.paywall_hits);
  keep(batch.exposures, kept.exposures);
  keep(batch.metric_events, kept.metric_events);
  return kept;
}

}  // namespace fulcrum::identity
