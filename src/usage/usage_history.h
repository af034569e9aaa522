// The usage layer: what each user did, per UTC day, read from the store's rollups
// (store/rollup.h) — the one way the engines (recommend/, lifecycle/, sunset/) read history.
//
// A UsageHistory holds users, the feature catalog, every user's day rows and feature-day rows
// of a day range (compact, integer-indexed, sorted by day) and the tier timeline. Windowed
// features (last 7/14/28 days, trends, active days) are sums over these rows, never over raw
// events. Day boundaries are exact UTC midnights: an analysis at time `now` covers the whole
// days before the day holding `now` (analysis_end_day), so "the last 7 days" is the 7 days
// ending at the last midnight; when `now` is a midnight that is exactly [now - 7d, now).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/model.h"
#include "store/rollup.h"

namespace fulcrum {

class Store;

// The first day after an analysis at `now` (exclusive end): the day holding `now`, so an
// analysis counts the whole days before it. A partial day would look like a drop in every
// trend; a clock a few minutes past midnight (the CLI's default of one second after the
// latest event) therefore analyses exactly the days up to that midnight.
inline UsageDay analysis_end_day(UnixSeconds now) { return usage_day_of(now); }
// Where that day starts: `now` rounded down to a midnight. Engines align their clock to it.
inline UnixSeconds analysis_end(UnixSeconds now) {
  return usage_day_start(analysis_end_day(now));
}

struct UsageLoadOptions {
  UsageDay from_day = std::numeric_limits<UsageDay>::min();  // inclusive
  UsageDay to_day = std::numeric_limits<UsageDay>::max();    // exclusive
  // Users with events but no row in the users table join as free users signed up at 0
  // (retention and sunset count them; the models train on registered users only).
  bool include_unregistered_users = false;
};

class UsageHistory {
 public:
  // One user's day (counts saturate at the field's maximum).
  struct Day {
    UsageDay day = 0;
    std::uint32_t sessions = 0;
    std::uint32_t usage_events = 0;
    std::uint32_t uses = 0;
    std::uint32_t paywall_hits = 0;
    std::uint16_t payments_succeeded = 0, payments_failed = 0;
    std::int64_t amount_succeeded_minor = 0;
  };
  struct FeatureDay {
    UsageDay day = 0;
    std::uint16_t feature = 0;  // index into feature_names()
    std::uint16_t paywall_hits = 0;
    std::uint32_t uses = 0;
    std::uint32_t usage_events = 0;
  };
  struct TierChange {
    UnixSeconds at = 0;
    SubscriptionChangeKind kind = SubscriptionChangeKind::kUpgrade;
    Tier from_tier = Tier::kFree;
    Tier to_tier = Tier::kFree;
  };

  // Every user's rollups of the days in [options.from_day, options.to_day), all in memory
  // (small stores and tests; engines over a whole store use open()).
  static Result<UsageHistory> load(Store& store, const UsageLoadOptions& options = {});
  // The users, the catalog and the tier timeline now; the day rows are read a slice of users
  // at a time by for_each_slice (users whose store keys fall in one range of
  // `keys_per_slice` keys), so no more than one slice's rows are ever in memory: at a
  // million users the whole history is tens of millions of rows. `store` must outlive the
  // history.
  static Result<UsageHistory> open(Store& store, const UsageLoadOptions& options = {},
                                   std::uint32_t keys_per_slice = kDefaultKeysPerSlice);
  static constexpr std::uint32_t kDefaultKeysPerSlice = 32768;
  // One user's rollups only (the store reads that user's rows alone). NotFound when the
  // user is neither registered nor has events.
  static Result<UsageHistory> load_user(Store& store, const std::string& user_id,
                                        const UsageLoadOptions& options = {});
  // The same rows from an in-memory batch, through the stores' aggregation (RollupAccumulator).
  static UsageHistory from_events(const EventBatch& events, const UsageLoadOptions& options = {});

  // Visits the users in slices: during visit(users) the day and feature-day rows of those
  // users (ascending indices) are loaded, and only theirs; days() of any other user is
  // empty. Every user is in exactly one slice (users without events in the first). A history
  // from load() or from_events() is one slice of every user. An error of the store's read
  // or of `visit` ends the walk and is returned. Not to be called from two threads at once.
  Status for_each_slice(const std::function<Status(std::span<const int> users)>& visit) const;
  // Whether the rows are read a slice at a time (open) rather than all held (load).
  bool streamed() const { return store_ != nullptr; }

  int user_count() const { return static_cast<int>(user_ids_.size()); }
  // What a history keeps of a user: id, current tier and signup time (no targeting
  // attributes: at a million users they would be hundreds of MB of every history).
  User user(int u) const;
  const std::string& user_id(int u) const { return user_ids_[u]; }
  Tier current_tier(int u) const { return tiers_[u]; }
  UnixSeconds signup_at(int u) const { return signups_[u]; }
  int find_user(std::string_view user_id) const;  // -1 when unknown
  // The catalog sorted by name: feature indices [0, features().size()) are catalog entries;
  // higher indices (up to feature_names().size()) are names seen in events only.
  const std::vector<Feature>& features() const { return features_; }
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  int find_feature(std::string_view name) const;  // -1 when unknown

  std::span<const Day> days(int u) const {
    const RowRange& r = day_ranges_[static_cast<std::size_t>(u)];
    return {days_.data() + r.begin, days_.data() + r.end};
  }
  std::span<const FeatureDay> feature_days(int u) const {
    const RowRange& r = feature_day_ranges_[static_cast<std::size_t>(u)];
    return {feature_days_.data() + r.begin, feature_days_.data() + r.end};
  }
  // Where a user's loaded rows are (empty outside the user's slice).
  struct RowRange {
    std::size_t begin = 0, end = 0;
  };
  std::span<const TierChange> tier_changes(int u) const {
    return {changes_.data() + change_offsets_[u], changes_.data() + change_offsets_[u + 1]};
  }
  // Rows of days in [from_day, to_day) (binary search on the sorted rows).
  std::span<const Day> days_between(int u, UsageDay from_day, UsageDay to_day) const;
  std::span<const FeatureDay> feature_days_between(int u, UsageDay from_day,
                                                   UsageDay to_day) const;
  // The user's tier just before time t: the current tier with later changes undone.
  Tier tier_at(int u, UnixSeconds t) const;
  std::size_t day_rows() const { return days_.size(); }
  std::size_t feature_day_rows() const { return feature_days_.size(); }

 private:
  class Builder;
  struct PendingRows;
  // Reads the rows of `query` (a key range, or every key) into days_ / feature_days_.
  Status read_rows(Store& store, const RollupQuery& query, std::span<const int> users) const;
  // Lays out the rows of `users` (ascending; every row is one of theirs).
  void place_rows(std::span<const int> users, PendingRows& pending) const;
  static Status read_skeleton(Store& store, Builder& builder);
  int user_of(std::uint32_t key) const {
    return key < user_of_key_.size() ? user_of_key_[key] : -1;
  }

  Store* store_ = nullptr;  // set for a streamed history (open)
  UsageLoadOptions options_;
  std::uint32_t keys_per_slice_ = kDefaultKeysPerSlice;
  std::vector<int> user_of_key_, feature_of_key_;  // store keys -> indices (-1: not loaded)
  std::vector<std::vector<int>> slice_users_;      // streamed: the users of each key slice
  // Users as columns plus their ids' sorted order for lookup: ~45 bytes a user, where a
  // User record and a hash-map entry were ~260.
  std::vector<std::string> user_ids_;
  std::vector<Tier> tiers_;
  std::vector<UnixSeconds> signups_;
  std::vector<int> users_by_id_;  // indices into user_ids_, ascending by id
  std::vector<Feature> features_;
  std::vector<std::string> feature_names_;
  std::unordered_map<std::string, int> feature_index_;
  // The rows loaded now (mutable: a streamed history swaps them slice by slice).
  mutable std::vector<RowRange> day_ranges_, feature_day_ranges_;
  std::vector<int> slice_position_;  // each user's index in its slice's user list
  mutable std::vector<Day> days_;
  mutable std::vector<FeatureDay> feature_days_;
  std::vector<std::size_t> change_offsets_{0};
  std::vector<TierChange> changes_;
};

// Sum of a field over day rows.
template <typename Rows, typename Field>
std::int64_t sum_of(const Rows& rows, Field field) {
  std::int64_t total = 0;
  for (const auto& row : rows) total += row.*field;
  return total;
}

}  // namespace fulcrum
