// Usage rollups: what each user did per UTC day, kept by the store beside the events.
//
// ingest() folds every batch into these rows in the transaction that stores its events, so
// the two never disagree; src/usage reads them instead of the raw event stream. Users and
// features are integer keys here (Store::scan_user_keys / scan_feature_keys name them).
// A day is a UTC calendar day numbered from the Unix epoch (day 0 = 1970-01-01); money is
// integer minor units. RollupAccumulator is the one C++ definition of the aggregation (the
// SQLite backend and UsageHistory::from_events use it); the PostgreSQL backend runs the same
// aggregation in SQL, and the store conformance tests hold both to identical rows.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/time.h"
#include "store/model.h"

namespace fulcrum {

using UsageDay = std::int32_t;

// A user with no rollup key (never had a usage event).
inline constexpr std::uint32_t kNoRollupKey = 0xFFFFFFFFU;

// The UTC day holding t, and where a day starts.
inline UsageDay usage_day_of(UnixSeconds t) {
  return static_cast<UsageDay>(floor_to_day(t) / kSecondsPerDay);
}
inline UnixSeconds usage_day_start(UsageDay day) {
  return static_cast<UnixSeconds>(day) * kSecondsPerDay;
}

// One user's totals on one day: every session, usage, payment and paywall event counted.
struct UserDayRollup {
  UsageDay day = 0;
  std::uint32_t user_key = 0;
  std::int64_t sessions = 0;
  std::int64_t session_seconds = 0;
  std::int64_t usage_events = 0;  // feature-usage events
  std::int64_t uses = 0;          // their summed counts
  std::int64_t payments_succeeded = 0, payments_failed = 0;
  std::int64_t amount_succeeded_minor = 0, amount_failed_minor = 0;
  std::int64_t paywall_hits = 0;
  bool operator==(const UserDayRollup&) const = default;
};

// One user's use of one feature on one day, and the paywall hits it caused.
struct FeatureDayRollup {
  UsageDay day = 0;
  std::uint32_t user_key = 0;
  std::uint32_t feature_key = 0;
  std::int64_t usage_events = 0;
  std::int64_t uses = 0;
  std::int64_t paywall_hits = 0;
  bool operator==(const FeatureDayRollup&) const = default;
};

// The tier timeline: every subscription change, keyed by user (exact times are kept: there
// are few, and upgrade labels need them).
struct TierChangeRollup {
  std::uint32_t user_key = 0;
  UnixSeconds at = 0;
  SubscriptionChangeKind kind = SubscriptionChangeKind::kUpgrade;
  Tier from_tier = Tier::kFree;
  Tier to_tier = Tier::kFree;
  bool operator==(const TierChangeRollup&) const = default;
};

// Which rollup rows to read: days in [from_day, to_day), of one user (user_key), of the
// users with keys in [user_key, user_key_end) when user_key_end is set too, or of all. A
// key range is read by one index probe per day (the tables are keyed day first), so reading
// the users in slices of keys costs one pass over the rows in all.
struct RollupQuery {
  UsageDay from_day = std::numeric_limits<UsageDay>::min();
  UsageDay to_day = std::numeric_limits<UsageDay>::max();
  std::optional<std::uint32_t> user_key;
  std::optional<std::uint32_t> user_key_end = std::nullopt;  // exclusive; only with user_key
  // The keys read, as [first, end) (every key when no user_key is set).
  std::uint32_t first_key() const { return user_key.value_or(0); }
  std::uint64_t end_key() const {
    if (!user_key) return std::uint64_t{1} << 32;
    return user_key_end ? *user_key_end : std::uint64_t{*user_key} + 1;
  }
};

// What `fulcrum rollups verify` reports: the rollups recomputed from the events and compared
// with the stored ones, row by row.
struct RollupVerification {
  std::int64_t user_days = 0, feature_days = 0, tier_changes = 0;  // rows recomputed
  std::int64_t mismatches = 0;        // rows missing, extra or different
  std::vector<std::string> examples;  // the first few mismatches, in words
  bool consistent() const { return mismatches == 0; }
};

// Folds events (already given integer keys) into user-day and feature-day rows.
class RollupAccumulator {
 public:
  void add_usage(std::uint32_t user_key, std::uint32_t feature_key, UnixSeconds at,
                 std::int64_t count);
  void add_session(std::uint32_t user_key, UnixSeconds at, std::int64_t duration_seconds);
  void add_payment(std::uint32_t user_key, UnixSeconds at, bool succeeded,
                   std::int64_t amount_minor);
  void add_paywall_hit(std::uint32_t user_key, std::uint32_t feature_key, UnixSeconds at);
  bool empty() const { return user_days_.empty(); }
  // Rows sorted by (day, user_key[, feature_key]): the tables' key order.
  std::vector<UserDayRollup> user_days() const;
  std::vector<FeatureDayRollup> feature_days() const;

 private:
  static std::uint64_t user_day_id(UsageDay day, std::uint32_t user_key) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(day) ^ 0x80000000U) << 32) |
           user_key;
  }
  UserDayRollup& user_day(std::uint32_t user_key, UnixSeconds at);
  FeatureDayRollup& feature_day(std::uint32_t user_key, std::uint32_t feature_key,
                                UnixSeconds at);
  std::unordered_map<std::uint64_t, UserDayRollup> user_days_;
  // (user-day id, feature key) -> row
  struct PairHash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint32_t>& p) const {
      return std::hash<std::uint64_t>{}(p.first * 0x9E3779B97F4A7C15ULL ^ p.second);
    }
  };
  std::unordered_map<std::pair<std::uint64_t, std::uint32_t>, FeatureDayRollup, PairHash>
      feature_days_;
};

// Compares stored and recomputed rows of one table (both sorted in key order) and adds the
// differences to `report` (at most `max_examples` described).
void compare_user_days(const std::vector<UserDayRollup>& stored,
                       const std::vector<UserDayRollup>& recomputed, RollupVerification& report);
void compare_feature_days(const std::vector<FeatureDayRollup>& stored,
                          const std::vector<FeatureDayRollup>& recomputed,
                          RollupVerification& report);
void compare_tier_changes(std::vector<TierChangeRollup> stored,
                          std::vector<TierChangeRollup> recomputed, RollupVerification& report);

}  // namespace fulcrum
