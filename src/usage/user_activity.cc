#include "usage/user_activity.h"

#include <algorithm>
#include <limits>

#include "store/store.h"
#include "usage/usage_history.h"

namespace fulcrum {

UserActivity::UserActivity(UnixSeconds now, int days)
    : now_(now),
      days_(std::max(days, 1)),
      words_((std::max(days, 1) + 63) / 64),
      daily_(static_cast<std::size_t>(days_), 0),
      payment_offsets_(2, 0) {}

int UserActivity::find_user(std::string_view user_id) const {
  auto it = user_by_id_.find(user_id);
  return it == user_by_id_.end() ? -1 : it->second;
}

int UserActivity::register_user(std::string_view user_id, Tier tier, UnixSeconds signup_at) {
  auto [it, inserted] = user_by_id_.try_emplace(std::string(user_id), user_count());
  if (!inserted) {
    tiers_[it->second] = tier;
    signup_at_[it->second] = signup_at;
    return it->second;
  }
  user_ids_.push_back(&it->first);
  tiers_.push_back(tier);
  signup_at_.push_back(signup_at);
  row_of_.push_back(0);
  return it->second;
}

int UserActivity::add_row() const {
  const int row = rows_++;
  daily_.resize(static_cast<std::size_t>(rows_) * days_, 0);
  for (auto& bits : feature_days_) bits.resize(static_cast<std::size_t>(rows_) * words_, 0);
  return row;
}

int UserActivity::add_user(const std::string& user_id, Tier tier, UnixSeconds signup_at) {
  const int before = user_count();
  const int user = register_user(user_id, tier, signup_at);
  if (user == before && !streamed()) row_of_[user] = add_row();
  return user;
}

int UserActivity::user_index(std::string_view user_id) {
  if (last_user_index_ >= 0 && user_id == last_user_) return last_user_index_;
  int index = find_user(user_id);
  if (index < 0) index = add_user(std::string(user_id));
  last_user_.assign(user_id);
  last_user_index_ = index;
  return index;
}

int UserActivity::feature_index(std::string_view feature) {
  if (last_feature_index_ >= 0 && feature == last_feature_) return last_feature_index_;
  auto it = feature_by_name_.find(feature);
  int index;
  if (it != feature_by_name_.end()) {
    index = it->second;
  } else {
    index = feature_count();
    features_.emplace_back(feature);
    feature_by_name_.emplace(std::string(feature), index);
    feature_days_.emplace_back(static_cast<std::size_t>(rows_) * words_, 0);
  }
  last_feature_.assign(feature);
  last_feature_index_ = index;
  return index;
}

int UserActivity::day_of(UnixSeconds t) const {
  if (t >= now_) return -1;
  UnixSeconds offset = t - window_start();
  if (offset < 0) return -1;
  return static_cast<int>(offset / kSecondsPerDay);
}

namespace {

void add_saturated(std::uint16_t& cell, std::int64_t amount) {
  cell = static_cast<std::uint16_t>(
      std::min<std::int64_t>(cell + amount, std::numeric_limits<std::uint16_t>::max()));
}

}  // namespace

void UserActivity::record_session(std::string_view user_id, UnixSeconds at) {
  int day = day_of(at);
  if (day < 0) return;
  const int row = row_of_[user_index(user_id)];
  add_saturated(daily_[static_cast<std::size_t>(row) * days_ + day], 1);
}

void UserActivity::record_feature_use(std::string_view user_id, std::string_view feature,
                                      UnixSeconds at, int count) {
  int day = day_of(at);
  if (day < 0 || count <= 0) return;
  const int row = row_of_[user_index(user_id)];
  const int f = feature_index(feature);
  add_saturated(daily_[static_cast<std::size_t>(row) * days_ + day], count);
  feature_days_[f][static_cast<std::size_t>(row) * words_ + day / 64] |= std::uint64_t{1}
                                                                         << (day % 64);
}

void UserActivity::record_payment(std::string_view user_id, UnixSeconds at, bool succeeded,
                                  std::int64_t amount_minor) {
  if (day_of(at) < 0) return;
  pending_payments_.push_back({row_of_[user_index(user_id)], {at, succeeded, amount_minor}});
}

void UserActivity::finish() { place_payments(); }

// Placed and pending payments into one CSR over rows (a counting sort: the rows' lists are
// short, and a vector per user would cost more than its payments), each row's list sorted.
void UserActivity::place_payments() const {
  std::vector<std::size_t> offsets(static_cast<std::size_t>(rows_) + 1, 0);
  const std::size_t placed_rows = payment_offsets_.size() - 1;
  for (std::size_t row = 0; row < placed_rows; ++row) {
    offsets[row + 1] += payment_offsets_[row + 1] - payment_offsets_[row];
  }
  for (const auto& [row, payment] : pending_payments_) ++offsets[static_cast<std::size_t>(row) + 1];
  for (std::size_t row = 0; row < static_cast<std::size_t>(rows_); ++row) {
    offsets[row + 1] += offsets[row];
  }
  std::vector<Payment> placed(offsets.back());
  std::vector<std::size_t> next(offsets.begin(), offsets.end() - 1);
  // Earlier payments first, so that equal times keep their recording order.
  for (std::size_t row = 0; row < placed_rows; ++row) {
    for (std::size_t i = payment_offsets_[row]; i < payment_offsets_[row + 1]; ++i) {
      placed[next[row]++] = payments_[i];
    }
  }
  for (const auto& [row, payment] : pending_payments_) {
    placed[next[static_cast<std::size_t>(row)]++] = payment;
  }
  std::vector<std::pair<int, Payment>>().swap(pending_payments_);
  for (std::size_t row = 0; row < static_cast<std::size_t>(rows_); ++row) {
    std::stable_sort(placed.begin() + static_cast<std::ptrdiff_t>(offsets[row]),
                     placed.begin() + static_cast<std::ptrdiff_t>(offsets[row + 1]),
                     [](const Payment& a, const Payment& b) {
                       return a.at != b.at ? a.at < b.at : a.succeeded < b.succeeded;
                     });
  }
  payments_ = std::move(placed);
  payment_offsets_ = std::move(offsets);
}

std::span<const UserActivity::Payment> UserActivity::payments(int user) const {
  const auto row = static_cast<std::size_t>(row_of_[user]);
  if (row + 1 >= payment_offsets_.size()) return {};  // a row added since finish()
  return {payments_.data() + payment_offsets_[row], payments_.data() + payment_offsets_[row + 1]};
}

std::int64_t UserActivity::activity_sum(int user, int from_day, int to_day) const {
  from_day = std::max(from_day, 0);
  to_day = std::min(to_day, days_);
  const std::uint16_t* row = daily_row(user);
  std::int64_t sum = 0;
  for (int d = from_day; d < to_day; ++d) sum += row[d];
  return sum;
}

int UserActivity::active_days(int user, int from_day, int to_day) const {
  from_day = std::max(from_day, 0);
  to_day = std::min(to_day, days_);
  const std::uint16_t* row = daily_row(user);
  int count = 0;
  for (int d = from_day; d < to_day; ++d) count += row[d] > 0;
  return count;
}

int UserActivity::last_active_day(int user, int before_day) const {
  before_day = std::min(before_day, days_);
  const std::uint16_t* row = daily_row(user);
  for (int d = before_day - 1; d >= 0; --d) {
    if (row[d] > 0) return d;
  }
  return -1;
}

bool UserActivity::used_feature(int user, int feature, int day) const {
  if (day < 0 || day >= days_) return false;
  return (feature_bits(user, feature)[day / 64] >> (day % 64)) & 1U;
}

bool UserActivity::used_feature_between(int user, int feature, int from_day, int to_day) const {
  from_day = std::max(from_day, 0);
  to_day = std::min(to_day, days_);
  const std::uint64_t* bits = feature_bits(user, feature);
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
  const std::uint64_t* bits = feature_bits(user, feature);
  for (int w = 0; w < words_; ++w) {
    if (bits[w]) return true;
  }
  return false;
}

// Users (registered ones first, then those with events only, as free users), the store's
// user and feature keys and the features with events (indices in name order).
Status UserActivity::read_skeleton(Store& store, UserActivity& activity) {
  FULCRUM_RETURN_IF_ERROR(store.scan_users([&](const User& user) {
    activity.register_user(user.user_id, user.tier, user.signup_at);
  }));
  auto& user_of_key = activity.user_of_key_;
  FULCRUM_RETURN_IF_ERROR(store.scan_user_keys([&](std::uint32_t key, const std::string& id) {
    if (key >= user_of_key.size()) user_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
    int user = activity.find_user(id);
    user_of_key[key] = user >= 0 ? user : activity.register_user(id, Tier::kFree, 0);
  }));
  std::vector<char> has_key(static_cast<std::size_t>(activity.user_count()), 0);
  for (int user : user_of_key) {
    if (user >= 0) has_key[static_cast<std::size_t>(user)] = 1;
  }
  for (int user = 0; user < activity.user_count(); ++user) {
    if (!has_key[static_cast<std::size_t>(user)]) activity.keyless_users_.push_back(user);
  }
  std::vector<std::pair<std::uint32_t, std::string>> feature_keys;
  FULCRUM_RETURN_IF_ERROR(store.scan_feature_keys(
      [&](std::uint32_t key, const std::string& name) { feature_keys.emplace_back(key, name); }));
  // Names in sorted order: feature indices do not depend on the store's key order.
  std::sort(feature_keys.begin(), feature_keys.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  auto& feature_of_key = activity.feature_of_key_;
  for (const auto& [key, name] : feature_keys) {
    if (key >= feature_of_key.size()) feature_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
    feature_of_key[key] = activity.feature_index(name);
  }
  return Status::ok();
}

Status UserActivity::read_cells(Store& store, const RollupQuery& query,
                                std::vector<int> users) const {
  for (int user : slice_users_) row_of_[user] = 0;
  slice_users_ = std::move(users);
  rows_ = static_cast<int>(slice_users_.size()) + 1;
  for (int i = 0; i + 1 < rows_; ++i) row_of_[slice_users_[i]] = i + 1;
  daily_.assign(static_cast<std::size_t>(rows_) * days_, 0);
  for (auto& bits : feature_days_) bits.assign(static_cast<std::size_t>(rows_) * words_, 0);
  payments_.clear();
  payment_offsets_.assign(1, 0);
  auto row_of_key = [&](std::uint32_t key) {
    return key < user_of_key_.size() && user_of_key_[key] >= 0 ? row_of_[user_of_key_[key]] : 0;
  };
  // The two tables at once; their visits fill disjoint state (daily_ and pending_payments_,
  // feature_days_).
  FULCRUM_RETURN_IF_ERROR(scan_day_rollups_at_once(
      store, query,
      [&](const UserDayRollup& row) {
        const int cells = row_of_key(row.user_key);
        const int day = row.day - first_day_;
        if (cells == 0 || day < 0 || day >= days_) return;
        add_saturated(daily_[static_cast<std::size_t>(cells) * days_ + day],
                      row.sessions + std::max<std::int64_t>(row.uses, 0));
        // A day's failures before its successes, so a same-day retry counts as a recovery.
        const UnixSeconds at = day_start(day);
        for (std::int64_t i = 0; i < row.payments_failed; ++i) {
          pending_payments_.push_back({cells, {at, false, 0}});
        }
        for (std::int64_t i = 0; i < row.payments_succeeded; ++i) {
          pending_payments_.push_back({cells, {at, true, 0}});
        }
      },
      query,
      [&](const FeatureDayRollup& row) {
        if (row.uses <= 0) return;  // paywall hits only
        const int cells = row_of_key(row.user_key);
        const int day = row.day - first_day_;
        if (cells == 0 || day < 0 || day >= days_ || row.feature_key >= feature_of_key_.size()) {
          return;
        }
        const int feature = feature_of_key_[row.feature_key];
        if (feature < 0) return;
        feature_days_[feature][static_cast<std::size_t>(cells) * words_ + day / 64] |=
            std::uint64_t{1} << (day % 64);
      }));
  place_payments();
  return Status::ok();
}

Status UserActivity::for_each_slice(
    const std::function<Status(std::span<const int> users)>& visit) const {
  if (!streamed()) {
    std::vector<int> everyone(static_cast<std::size_t>(user_count()));
    for (int u = 0; u < user_count(); ++u) everyone[static_cast<std::size_t>(u)] = u;
    return visit(everyone);
  }
  const std::size_t keys = user_of_key_.size();
  const std::size_t slices = keys == 0 ? 1 : (keys - 1) / keys_per_slice_ + 1;
  Status result = Status::ok();
  for (std::size_t slice = 0; slice < slices && result.is_ok(); ++slice) {
    const std::size_t first_key = slice * keys_per_slice_;
    const std::size_t end_key = std::min<std::size_t>(first_key + keys_per_slice_, keys);
    std::vector<int> users;
    if (slice == 0) users = keyless_users_;
    for (std::size_t key = first_key; key < end_key; ++key) {
      if (user_of_key_[key] >= 0) users.push_back(user_of_key_[key]);
    }
    if (users.empty()) continue;
    std::sort(users.begin(), users.end());
    RollupQuery query{first_day_, end_day_, std::nullopt, std::nullopt};
    query.user_key = static_cast<std::uint32_t>(first_key);
    query.user_key_end = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(first_key + std::uint64_t{keys_per_slice_}, 0xFFFFFFFFULL));
    result = read_cells(*store_, query, std::move(users));
    if (result.is_ok()) result = visit(slice_users_);
  }
  // The last slice's cells go: a streamed activity holds none between walks.
  for (int user : slice_users_) row_of_[user] = 0;
  std::vector<int>().swap(slice_users_);
  rows_ = 1;
  daily_.assign(static_cast<std::size_t>(days_), 0);
  daily_.shrink_to_fit();
  for (auto& bits : feature_days_) {
    bits.assign(static_cast<std::size_t>(words_), 0);
    bits.shrink_to_fit();
  }
  std::vector<Payment>().swap(payments_);
  payment_offsets_.assign(2, 0);
  return result;
}

Result<UserActivity> UserActivity::read(Store& store, UnixSeconds now, int days,
                                        std::uint32_t keys_per_slice, bool streamed) {
  if (days <= 0) return invalid_argument("history days must be positive", "history_days");
  if (keys_per_slice == 0) return invalid_argument("must be positive", "keys_per_slice");
  const UsageDay end_day = analysis_end_day(now);
  UserActivity activity(usage_day_start(end_day), days);
  activity.end_day_ = end_day;
  activity.first_day_ = end_day - days;
  FULCRUM_RETURN_IF_ERROR(read_skeleton(store, activity));
  if (streamed) {
    activity.store_ = &store;
    activity.keys_per_slice_ = keys_per_slice;
    return activity;
  }
  std::vector<int> everyone(static_cast<std::size_t>(activity.user_count()));
  for (int u = 0; u < activity.user_count(); ++u) everyone[static_cast<std::size_t>(u)] = u;
  FULCRUM_RETURN_IF_ERROR(activity.read_cells(
      store, RollupQuery{activity.first_day_, end_day, std::nullopt}, std::move(everyone)));
  return activity;
}

Result<UserActivity> UserActivity::open(Store& store, UnixSeconds now, int days,
                                        std::uint32_t keys_per_slice) {
  return read(store, now, days, keys_per_slice, true);
}

Result<UserActivity> load_user_activity(Store& store, UnixSeconds now, int days) {
  return UserActivity::read(store, now, days, UserActivity::kDefaultKeysPerSlice, false);
}

}  // namespace fulcrum
