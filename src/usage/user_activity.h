// Compact per-user daily activity over a window of whole UTC days, the one aggregate every
// retention trigger and the churn model read. load_user_activity fills it from the store's
// usage rollups (one row per user-day, never the raw events), so triggers over 250k users
// never query per user. The window ends at analysis_end(now) (`now` rounded down to a
// midnight): day `days-1` is the last whole day before `now`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "store/model.h"

namespace fulcrum {

class Store;

class UserActivity {
 public:
  struct Payment {
    UnixSeconds at = 0;
    bool succeeded = true;
    std::int64_t amount_minor = 0;
  };

  // A window of `days` whole days ending (exclusive) at `now`.
  UserActivity(UnixSeconds now, int days);

  // Registers a user (idempotent); events of unregistered users register them as free.
  int add_user(const std::string& user_id, Tier tier = Tier::kFree, UnixSeconds signup_at = 0);
  // Activity = sessions + feature uses; `count` events at time `at` (ignored outside window).
  void record_session(std::string_view user_id, UnixSeconds at);
  void record_feature_use(std::string_view user_id, std::string_view feature, UnixSeconds at,
                          int count = 1);
  void record_payment(std::string_view user_id, UnixSeconds at, bool succeeded,
                      std::int64_t amount_minor);
  // Day-level recording by index (what the rollups hold): `amount` activity events on day
  // `day` of the window; a feature used that day; a day's payment outcomes (a day's failures
  // sort before its successes, so a same-day retry counts as a recovery).
  void add_day_activity(int user, int day, std::int64_t amount);
  void mark_feature_day(int user, int feature, int day);
  void add_day_payments(int user, int day, int succeeded, int failed);
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
  const std::string& user_id(int user) const { return user_ids_[user]; }
  int find_user(std::string_view user_id) const;  // -1 when unknown
  Tier tier(int user) const { return tiers_[user]; }
  UnixSeconds signup_at(int user) const { return signup_at_[user]; }

  // Activity events on a day (saturates at 65535).
  int activity(int user, int day) const {
    return daily_[static_cast<std::size_t>(user) * days_ + day];
  }
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

  const std::vector<Payment>& payments(int user) const { return payments_[user]; }

 private:
  int user_index(std::string_view user_id);

  UnixSeconds now_;
  int days_;
  int words_;  // 64-bit words per (user, feature) day bitset
  std::vector<std::string> user_ids_;
  std::unordered_map<std::string, int> user_by_id_;
  std::vector<Tier> tiers_;
  std::vector<UnixSeconds> signup_at_;
  std::vector<std::uint16_t> daily_;  // user-major: user * days_ + day
  std::vector<std::string> features_;
  std::unordered_map<std::string, int> feature_by_name_;
  // Per feature: user-major bitsets (user * words_ + word); grown with the user count.
  std::vector<std::vector<std::uint64_t>> feature_days_;
  std::vector<std::vector<Payment>> payments_;
  // One-entry caches: scans often deliver runs of events of the same user/feature.
  std::string last_user_;
  int last_user_index_ = -1;
  std::string last_feature_;
  int last_feature_index_ = -1;
};

// Loads `days` whole days of activity ending at analysis_end(now) from the store's usage
// rollups (one pass over user-day and feature-day rows).
Result<UserActivity> load_user_activity(Store& store, UnixSeconds now, int days);

}  // namespace fulcrum
