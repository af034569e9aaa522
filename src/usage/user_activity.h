// Compact per-user daily activity over a window of whole UTC days, the one aggregate every
// retention trigger and the churn model read, filled from the store's usage rollups (one row
// per user-day, never the raw events). The window ends at analysis_end(now) (`now` rounded
// down to a midnight): day `days-1` is the last whole day before `now`.
//
// Every user (id, tier, signup) is always present; the day cells, feature days and payments
// are held for the users of one slice at a time. load_user_activity reads them for everyone
// at once (tests, small stores); open() reads them a slice of store keys at a time in
// for_each_slice, so at a million users only one slice's cells (32k users) are in memory.
// Outside a slice a user's cells read as empty.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "store/model.h"
#include "store/rollup.h"

namespace fulcrum {

class Store;

class UserActivity {
 public:
  struct Payment {
    UnixSeconds at = 0;
    bool succeeded = true;
    std::int64_t amount_minor = 0;
  };

  // A window of `days` whole days ending (exclusive) at `now`, every user's cells held.
  UserActivity(UnixSeconds now, int days);
  // Move-only: the id table points into the id index.
  UserActivity(UserActivity&&) = default;
  UserActivity& operator=(UserActivity&&) = default;
  UserActivity(const UserActivity&) = delete;
  UserActivity& operator=(const UserActivity&) = delete;

  // The users and features of the store now; their cells of the `days` days before
  // analysis_end(now) are read by for_each_slice, `keys_per_slice` store keys at a time.
  // `store` must outlive the activity.
  static Result<UserActivity> open(Store& store, UnixSeconds now, int days,
                                   std::uint32_t keys_per_slice = kDefaultKeysPerSlice);
  static constexpr std::uint32_t kDefaultKeysPerSlice = 32768;

  // Visits the users in slices: during visit(users) the cells of those users (ascending
  // indices) are loaded, and only theirs. Every user is in exactly one slice (users without
  // events in the first); slices come in store-key order. An activity not from open() is one
  // slice of every user. An error of the store's read or of `visit` ends the walk and is
  // returned. Not to be called from two threads at once.
  Status for_each_slice(const std::function<Status(std::span<const int> users)>& visit) const;
  // Whether the cells are read a slice at a time (open) rather than all held.
  bool streamed() const { return store_ != nullptr; }

  // Registers a user (idempotent); events of unregistered users register them as free.
  int add_user(const std::string& user_id, Tier tier = Tier::kFree, UnixSeconds signup_at = 0);
  // Activity = sessions + feature uses; `count` events at time `at` (ignored outside window).
  // Recording needs an activity whose cells are all held (not from open()).
  void record_session(std::string_view user_id, UnixSeconds at);
  void record_feature_use(std::string_view user_id, std::string_view feature, UnixSeconds at,
                          int count = 1);
  // Payments become visible in payments() at finish().
  void record_payment(std::string_view user_id, UnixSeconds at, bool succeeded,
                      std::int64_t amount_minor);
  int feature_index(std::string_view feature);
  // Sorts each user's payments by time (failures first on ties); call once after recording.
  void finish();

  UnixSeconds now() const { return now_; }
  int days() const { return days_; }
  UnixSeconds window_start() const {
    return now_ - static_cast<UnixSeconds>(days_) * kSecondsPerDay;
  }
  // Day index of t, or -1 when outside the window.
  int day_of(UnixSeconds t) const;
  // Start time of day index d.
  UnixSeconds day_start(int day) const { return window_start() + day * kSecondsPerDay; }

  int user_count() const { return static_cast<int>(user_ids_.size()); }
  const std::string& user_id(int user) const { return *user_ids_[user]; }
  int find_user(std::string_view user_id) const;  // -1 when unknown
  Tier tier(int user) const { return tiers_[user]; }
  UnixSeconds signup_at(int user) const { return signup_at_[user]; }

  // Activity events on a day (saturates at 65535).
  int activity(int user, int day) const { return daily_row(user)[day]; }
  // Sum of activity over days [from_day, to_day), clamped to the window.
  std::int64_t activity_sum(int user, int from_day, int to_day) const;
  // Days with any activity in [from_day, to_day).
  int active_days(int user, int from_day, int to_day) const;
  // Last active day strictly before `before_day`, or -1.
  int last_active_day(int user, int before_day) const;

  int feature_count() const { return static_cast<int>(features_.size()); }
  const std::string& feature_name(int feature) const { return features_[feature]; }
  // Whether the user used the feature on that day.
  bool used_feature(int user, int feature, int day) const;
  // Whether the user used the feature on any day in [from_day, to_day).
  bool used_feature_between(int user, int feature, int from_day, int to_day) const;
  // True when the user used the feature at all in the window (cheap pre-filter).
  bool used_feature_ever(int user, int feature) const;

  // In time order, failures before successes at the same time.
  std::span<const Payment> payments(int user) const;

 private:
  // Transparent hashing: look ids up by string_view without building a string.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const {
      return std::hash<std::string_view>{}(name);
    }
  };
  using NameIndex = std::unordered_map<std::string, int, NameHash, std::equal_to<>>;

  // A user without cells (they come with a slice, or with a row for held activities).
  int register_user(std::string_view user_id, Tier tier, UnixSeconds signup_at);
  int user_index(std::string_view user_id);
  int add_row() const;
  const std::uint16_t* daily_row(int user) const {
    return &daily_[static_cast<std::size_t>(row_of_[user]) * days_];
  }
  const std::uint64_t* feature_bits(int user, int feature) const {
    return &feature_days_[feature][static_cast<std::size_t>(row_of_[user]) * words_];
  }
  friend Result<UserActivity> load_user_activity(Store& store, UnixSeconds now, int days);
  static Result<UserActivity> read(Store& store, UnixSeconds now, int days,
                                   std::uint32_t keys_per_slice, bool streamed);
  static Status read_skeleton(Store& store, UserActivity& activity);
  // Cells of `users` (their rows become 1..n) from the rollup rows of `query`.
  Status read_cells(Store& store, const RollupQuery& query, std::vector<int> users) const;
  void place_payments() const;

  UnixSeconds now_;
  int days_;
  int words_;  // 64-bit words per (user, feature) day bitset
  NameIndex user_by_id_;
  std::vector<const std::string*> user_ids_;  // keys of user_by_id_ (its nodes never move)
  std::vector<Tier> tiers_;
  std::vector<UnixSeconds> signup_at_;
  std::vector<std::string> features_;
  NameIndex feature_by_name_;

  // The cells held now, by row: row 0 is an empty row that users outside the slice read.
  // Mutable: a streamed activity swaps them slice by slice.
  mutable std::vector<int> row_of_;        // user -> row
  mutable std::vector<int> slice_users_;   // the users with a row (streamed: this slice's)
  mutable int rows_ = 1;
  mutable std::vector<std::uint16_t> daily_;  // row-major: row * days_ + day
  // Per feature: row-major bitsets (row * words_ + word).
  mutable std::vector<std::vector<std::uint64_t>> feature_days_;
  // Payments by row (CSR, placed by finish) and those recorded since (row, payment).
  mutable std::vector<std::size_t> payment_offsets_;
  mutable std::vector<Payment> payments_;
  mutable std::vector<std::pair<int, Payment>> pending_payments_;

  // Streamed (open): the store, its keys and where the window's days lie.
  Store* store_ = nullptr;
  std::uint32_t keys_per_slice_ = kDefaultKeysPerSlice;
  UsageDay first_day_ = 0, end_day_ = 0;
  std::vector<int> user_of_key_, feature_of_key_;  // store keys -> indices (-1: none)
  std::vector<int> keyless_users_;                 // users without events: the first slice's

  // One-entry caches: recorded events often come in runs of the same user/feature.
  std::string last_user_;
  int last_user_index_ = -1;
  std::string last_feature_;
  int last_feature_index_ = -1;
};

// Every user's cells of the `days` whole days before analysis_end(now), all held (one pass
// over user-day and feature-day rows). Engines over a whole store use UserActivity::open.
Result<UserActivity> load_user_activity(Store& store, UnixSeconds now, int days);

}  // namespace fulcrum
