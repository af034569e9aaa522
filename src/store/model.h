// Plain records stored by Fulcrum. Times are UnixSeconds (UTC); money is minor units.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"

namespace fulcrum {

// Tiers in ascending order of price. "free" is the only unpaid tier.
enum class Tier { kFree = 0, kPlus = 1, kPremium = 2 };
const char* tier_name(Tier tier);
std::optional<Tier> parse_tier(std::string_view name);

struct User {
  std::string user_id;
  Tier tier = Tier::kFree;
  UnixSeconds signup_at = 0;
  std::string country;      // ISO 3166 alpha-2, may be empty
  std::string app_version;  // e.g. "5.2.1", may be empty
  // Free-form targeting attributes (string values), e.g. {"segment": "student"}.
  std::map<std::string, std::string> attributes;
  // Optional identity (docs/ingestion.md): a record whose event_id was stored before (for
  // its kind) is not stored again. Empty: no identity.
  std::string event_id = {};
};

struct Feature {
  std::string name;
  Tier required_tier = Tier::kFree;
  std::int64_t monthly_maintenance_cost_minor = 0;  // what it costs the bank to run
  std::int64_t monthly_revenue_value_minor = 0;     // money value of one adopting user/month
  std::string category;                             // "payments", "savings", ...
  std::string event_id = {};  // optional identity, as User::event_id
};

// A user used a feature `count` times at `at`.
struct FeatureUsageEvent {
  std::string user_id;
  std::string feature;
  UnixSeconds at = 0;
  std::int32_t count = 1;
  std::string event_id = {};  // optional identity, as User::event_id
};

struct SessionEvent {
  std::string user_id;
  UnixSeconds at = 0;
  std::int32_t duration_seconds = 0;
  std::string event_id = {};  // optional identity, as User::event_id
};

enum class SubscriptionChangeKind { kUpgrade, kDowngrade, kCancel };
const char* subscription_change_name(SubscriptionChangeKind kind);
std::optional<SubscriptionChangeKind> parse_subscription_change(std::string_view name);

struct SubscriptionChangeEvent {
  std::string user_id;
  UnixSeconds at = 0;
  SubscriptionChangeKind kind = SubscriptionChangeKind::kUpgrade;
  Tier from_tier = Tier::kFree;
  Tier to_tier = Tier::kFree;
  std::string event_id = {};  // optional identity, as User::event_id
};

struct PaymentEvent {
  std::string user_id;
  UnixSeconds at = 0;
  bool succeeded = true;
  std::int64_t amount_minor = 0;
  std::string event_id = {};  // optional identity, as User::event_id
};

// A free user tried a feature above their tier and was shown the paywall.
struct PaywallHitEvent {
  std::string user_id;
  std::string feature;
  UnixSeconds at = 0;
  std::string event_id = {};  // optional identity, as User::event_id
};

// A user was shown a variant of an experiment (first exposure counts for analysis).
struct ExposureEvent {
  std::string experiment_id;
  std::string user_id;
  std::string variant;
  UnixSeconds at = 0;
  std::string event_id = {};  // optional identity, as User::event_id
};

// A metric observation: conversion metrics use value 1, revenue metrics the amount.
struct MetricEvent {
  std::string user_id;
  std::string metric;
  double value = 1.0;
  UnixSeconds at = 0;
  std::string event_id = {};  // optional identity, as User::event_id
};

// One ingestion batch. Stored atomically: all of it or none of it.
struct EventBatch {
  std::vector<User> users;
  std::vector<Feature> features;
  std::vector<FeatureUsageEvent> feature_usage;
  std::vector<SessionEvent> sessions;
  std::vector<SubscriptionChangeEvent> subscription_changes;
  std::vector<PaymentEvent> payments;
  std::vector<PaywallHitEvent> paywall_hits;
  std::vector<ExposureEvent> exposures;
  std::vector<MetricEvent> metric_events;

  std::size_t size() const {
    return users.size() + features.size() + feature_usage.size() + sessions.size() +
           subscription_changes.size() + payments.size() + paywall_hits.size() +
           exposures.size() + metric_events.size();
  }
  void clear() { *this = EventBatch{}; }
};

// A JSON document with an id and a status, for entities whose shape belongs to an engine
// (experiments, retention campaigns): the store keeps them opaque.
struct Document {
  std::string id;
  std::string kind;    // "experiment", "campaign", ...
  std::string status;  // lifecycle state, indexed for listing
  std::string body;    // JSON text
  UnixSeconds created_at = 0;
  UnixSeconds updated_at = 0;
  std::int64_t version = 0;  // optimistic concurrency: bumped on every write
  // Whether put_document also writes the change to the change feed (store/automation.h).
  // False for bulk data that nothing announces and that would bloat the feed with a copy
  // per save (a trained model is tens of MB); such a write is still atomic and versioned.
  bool to_change_feed = true;
};

// Per-variant sufficient statistics of one metric over exposed users, computed in the store.
// Each exposed user contributes one observation: the sum of their metric values at or after
// their first exposure (0 when none); `pre_*` use the same user's values in the
// `pre_period_seconds` before first exposure (for CUPED).
struct VariantMetricStats {
  std::string variant;
  std::int64_t users = 0;        // exposed users (n)
  std::int64_t converted = 0;    // users with a positive post-exposure value
  double sum = 0, sum_squares = 0;
  double pre_sum = 0, pre_sum_squares = 0, cross_sum = 0;  // sum(pre), sum(pre^2), sum(pre*post)
};

// Every exposed user's metric around their first exposure (Store::exposed_user_metric): what
// capping, quantile metrics, CUPED on capped values and CUPAC need, which per-variant sums
// cannot give. Users are in no particular order, the same order in every per-user vector.
struct ExposedUserMetric {
  std::vector<std::string> variants;  // distinct variant names, sorted
  std::vector<std::string> user_ids;
  std::vector<std::uint32_t> user_keys;      // the rollups' key; kNoRollupKey when none
  std::vector<std::uint16_t> variant_index;  // into variants
  std::vector<UnixSeconds> first_exposure_at;
  std::vector<double> post;  // the metric summed at or after the first exposure (0: no events)
  // pre[u * windows + w]: the metric summed over [first - edges[w + 1], first - edges[w]) for
  // the pre_window_edges asked (0 = edges[0] < edges[1] < ...).
  std::size_t windows = 0;
  std::vector<double> pre;
  std::size_t size() const { return post.size(); }
};

// The exposed users of one variant who have one value of a user attribute
// (Store::sliced_metric_stats).
struct SliceMetricStats {
  std::string slice;  // the attribute's value; "" for users without it
  std::string variant;
  std::int64_t users = 0;
  std::int64_t converted = 0;       // users with a positive (uncapped) post-exposure value
  double sum = 0, sum_squares = 0;  // of the per-user values, each capped at the cap asked for
};

struct ApiKeyRecord {
  std::string key_id;
  std::string key_hash;  // SHA-256 hex of the secret; the secret itself is never stored
  std::string role;      // admin, analyst, service
  std::string label;
  UnixSeconds created_at = 0;
  std::optional<UnixSeconds> revoked_at;
};

struct AuditEntry {
  std::int64_t sequence = 0;  // assigned by the store, 1-based, gap-free
  UnixSeconds at = 0;
  std::string actor;    // key id or "user:<id>" or "cli"
  std::string action;   // "POST /ab-tests", "keys.create"
  std::string target;   // the entity touched
  std::string outcome;  // "ok", "denied", "error: ..."
  std::string previous_hash;
  std::string hash;  // sha256(previous_hash | sequence | at | actor | action | target | outcome)
};

}  // namespace fulcrum
