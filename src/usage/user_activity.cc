#include "usage/user_activity.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "store/store.h"
#include "usage/usage_history.h"

namespace fulcrum {

UserActivity::UserActivity(UnixSeconds now, int days)
    : now_(now), days_(std::max(days, 1)), words_((std::max(days, 1) + 63) / 64) {}

int UserActivity::find_user(std::string_view user_id) const {
  auto it = user_by_id_.find(std::string(user_id));
  return it == user_by_id_.end() ? -1 : it->second;
}

int UserActivity::add_user(const std::string& user_id, Tier tier, UnixSeconds signup_at) {
  auto [it, inserted] = user_by_id_.try_emplace(user_id, static_cast<int>(user_ids_.size()));
  if (!inserted) {
    tiers_[it->second] = tier;
    signup_at_[it->second] = signup_at;
    return it->second;
  }
  user_ids_.push_back(user_id);
  tiers_.push_back(tier);
  signup_at_.push_back(signup_at);
  daily_.resize(daily_.size() + days_, 0);
  payments_.emplace_back();
  for (auto& bits : feature_days_) bits.resize(user_ids_.size() * words_, 0);
  return it->second;
}

int UserActivity::user_index(std::string_view user_id) {
  if (last_user_index_ >= 0 && user_id == last_user_) return last_user_index_;
  std::string key(user_id);
  auto it = user_by_id_.find(key);
  int index = it != user_by_id_.end() ? it->second : add_user(key);
  last_user_ = std::move(key);
  last_user_index_ = index;
  return index;
}

int UserActivity::feature_index(std::string_view feature) {
  if (last_feature_index_ >= 0 && feature == last_feature_) return last_feature_index_;
  std::string key(feature);
  auto it = feature_by_name_.find(key);
  int index;
  if (it != feature_by_name_.end()) {
    index = it->second;
  } else {
    index = static_cast<int>(features_.size());
    features_.push_back(key);
    feature_by_name_.emplace(key, index);
    feature_days_.emplace_back(user_ids_.size() * words_, 0);
  }
  last_feature_ = std::move(key);
  last_feature_index_ = index;
  return index;
}

int UserActivity::day_of(UnixSeconds t) const {
  if (t >= now_) return -1;
  UnixSeconds offset = t - window_start();
  if (offset < 0) return -1;
  return static_cast<int>(offset / kSecondsPerDay);
}

void UserActivity::record_session(std::string_view user_id, UnixSeconds at) {
  int day = day_of(at);
  if (day < 0) return;
  int user = user_index(user_id);
  std::uint16_t& cell = daily_[static_cast<std::size_t>(user) * days_ + day];
  if (cell < std::numeric_limits<std::uint16_t>::max()) ++cell;
}

void UserActivity::record_feature_use(std::string_view user_id, std::string_view feature,
                                      UnixSeconds at, int count) {
  int day = day_of(at);
  if (day < 0 || count <= 0) return;
  int user = user_index(user_id);
  int f = feature_index(feature);
  std::uint16_t& cell = daily_[static_cast<std::size_t>(user) * days_ + day];
  cell = static_cast<std::uint16_t>(
      std::min<int>(cell + count, std::numeric_limits<std::uint16_t>::max()));
  feature_days_[f][static_cast<std::size_t>(user) * words_ + day / 64] |= std::uint64_t{1}
                                                                          << (day % 64);
}

void UserActivity::record_payment(std::string_view user_id, UnixSeconds at, bool succeeded,
                                  std::int64_t amount_minor) {
  if (day_of(at) < 0) return;
  payments_[user_index(user_id)].push_back({at, succeeded, amount_minor});
}

void UserActivity::add_day_activity(int user, int day, std::int64_t amount) {
  if (day < 0 || day >= days_ || amount <= 0) return;
  std::uint16_t& cell = daily_[static_cast<std::size_t>(user) * days_ + day];
  cell = static_cast<std::uint16_t>(std::min<std::int64_t>(
      cell + amount, std::numeric_limits<std::uint16_t>::max()));
}

void UserActivity::mark_feature_day(int user, int feature, int day) {
  if (day < 0 || day >= days_) return;
  feature_days_[feature][static_cast<std::size_t>(user) * words_ + day / 64] |= std::uint64_t{1}
                                                                              << (day % 64);
}

void UserActivity::add_day_payments(int user, int day, int succeeded, int failed) {
  if (day < 0 || day >= days_) return;
  const UnixSeconds at = day_start(day);
  for (int i = 0; i < failed; ++i) payments_[user].push_back({at, false, 0});
  for (int i = 0; i < succeeded; ++i) payments_[user].push_back({at, true, 0});
}

void UserActivity::finish() {
  for (auto& list : payments_) {
    std::stable_sort(list.begin(), list.end(), [](const Payment& a, const Payment& b) {
      return a.at != b.at ? a.at < b.at : a.succeeded < b.succeeded;
    });
  }
}

std::int64_t UserActivity::activity_sum(int user, int from_day, int to_day) const {
  from_day = std::max(from_day, 0);
  to_day = std::min(to_day, days_);
  const std::uint16_t* row = &daily_[static_cast<std::size_t>(user) * days_];
  std::int64_t sum = 0;
  for (int d = from_day; d < to_day; ++d) sum += row[d];
  return sum;
}

int UserActivity::active_days(int user, int from_day, int to_day) const {
  from_day = std::max(from_day, 0);
  to_day = std::min(to_day, days_);
  const std::uint16_t* row = &daily_[static_cast<std::size_t>(user) * days_];
  int count = 0;
  for (int d = from_day; d < to_day; ++d) count += row[d] > 0;
  return count;
}

int UserActivity::last_active_day(int user, int before_day) const {
  before_day = std::min(before_day, days_);
  const std::uint16_t* row = &daily_[static_cast<std::size_t>(user) * days_];
  for (int d = before_day - 1; d >= 0; --d) {
    if (row[d] > 0) return d;
  }
  return -1;
}

bool UserActivity::used_feature(int user, int feature, int day) const {
  if (day < 0 || day >= days_) return false;
  return (feature_days_[feature][static_cast<std::size_t>(user) * words_ + day / 64] >>
          (day % 64)) &
         1U;
}

bool UserActivity::used_feature_between(int user, int feature, int from_day, int to_day) const {
  from_day = std::max(from_day, 0);
  to_day = std::min(to_day, days_);
  const std::uint64_t* bits = &feature_days_[feature][static_cast<std::size_t>(user) * words_];
  for (int d = from_day; d < to_day;) {
    int word = d / 64, bit = d % 64;
    int span = std::min(64 - bit, to_day - d);
    std::uint64_t mask = (span == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << span) - 1)) << bit;
    if (bits[word] & mask) return true;
    d += span;
  }
  return false;
}

bool UserActivity::used_feature_ever(int user, int feature) const {
  const std::uint64_t* bits = &feature_days_[feature][static_cast<std::size_t>(user) * words_];
  for (int w = 0; w < words_; ++w) {
    if (bits[w]) return true;
  }
  return false;
}

Result<UserActivity> load_user_activity(Store& store, UnixSeconds now, int days) {
  if (days <= 0) return invalid_argument("history days must be positive", "history_days");
  const UsageDay end_day = analysis_end_day(now);
  UserActivity activity(usage_day_start(end_day), days);
  const UsageDay first_day = end_day - days;
  FULCRUM_RETURN_IF_ERROR(store.scan_users(
      [&](const User& user) { activity.add_user(user.user_id, user.tier, user.signup_at); }));
  // Store keys -> activity indices (users with events only join as free users, as before).
  std::vector<int> user_of_key;
  FULCRUM_RETURN_IF_ERROR(store.scan_user_keys([&](std::uint32_t key, const std::string& id) {
    if (key >= user_of_key.size()) user_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
    int user = activity.find_user(id);
    user_of_key[key] = user >= 0 ? user : activity.add_user(id);
  }));
  std::vector<int> feature_of_key;
  std::vector<std::pair<std::uint32_t, std::string>> feature_keys;
  FULCRUM_RETURN_IF_ERROR(store.scan_feature_keys(
      [&](std::uint32_t key, const std::string& name) { feature_keys.emplace_back(key, name); }));
  // Names in sorted order: feature indices do not depend on the store's key order.
  std::sort(feature_keys.begin(), feature_keys.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  auto user_of = [&](std::uint32_t key) {
    return key < user_of_key.size() ? user_of_key[key] : -1;
  };
  const RollupQuery query{first_day, end_day, std::nullopt};
  FULCRUM_RETURN_IF_ERROR(store.scan_user_days(query, [&](const UserDayRollup& row) {
    const int user = user_of(row.user_key);
    if (user < 0) return;
    const int day = row.day - first_day;
    activity.add_day_activity(user, day, row.sessions + std::max<std::int64_t>(row.uses, 0));
    activity.add_day_payments(user, day, static_cast<int>(row.payments_succeeded),
                              static_cast<int>(row.payments_failed));
  }));
  // Every feature with events gets an index, in name order.
  for (const auto& [key, name] : feature_keys) {
    if (key >= feature_of_key.size()) feature_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
    feature_of_key[key] = activity.feature_index(name);
  }
  FULCRUM_RETURN_IF_ERROR(store.scan_feature_days(query, [&](const FeatureDayRollup& row) {
    if (row.uses <= 0) return;  // paywall hits only
    const int user = user_of(row.user_key);
    if (user < 0 || row.feature_key >= feature_of_key.size()) return;
    activity.mark_feature_day(user, feature_of_key[row.feature_key], row.day - first_day);
  }));
  activity.finish();
  return activity;
}

}  // namespace fulcrum
