#include "usage/usage_history.h"

#include <algorithm>
#include <limits>

#include "store/store.h"

namespace fulcrum {
namespace {

template <typename T>
T saturate(std::int64_t value) {
  return static_cast<T>(std::clamp<std::int64_t>(value, 0, std::numeric_limits<T>::max()));
}

UsageHistory::Day compact(const UserDayRollup& r) {
  UsageHistory::Day d;
  d.day = r.day;
  d.sessions = saturate<std::uint32_t>(r.sessions);
  d.usage_events = saturate<std::uint32_t>(r.usage_events);
  d.uses = saturate<std::uint32_t>(r.uses);
  d.paywall_hits = saturate<std::uint32_t>(r.paywall_hits);
  d.payments_succeeded = saturate<std::uint16_t>(r.payments_succeeded);
  d.payments_failed = saturate<std::uint16_t>(r.payments_failed);
  d.amount_succeeded_minor = r.amount_succeeded_minor;
  return d;
}

UsageHistory::FeatureDay compact(const FeatureDayRollup& r, int feature) {
  UsageHistory::FeatureDay d;
  d.day = r.day;
  d.feature = static_cast<std::uint16_t>(feature);
  d.paywall_hits = saturate<std::uint16_t>(r.paywall_hits);
  d.uses = saturate<std::uint32_t>(r.uses);
  d.usage_events = saturate<std::uint32_t>(r.usage_events);
  return d;
}

// Moves each row to its group's part of `rows` in place: `row_group` is each row's group in
// [0, offsets.size() - 1) with `offsets` the groups' starts (counting-sort prefix sums). It
// becomes each row's destination, the permutation's cycles are applied, and it is freed.
template <typename Row>
void permute_into_groups(std::vector<int>& row_group, const std::vector<std::size_t>& offsets,
                         std::vector<Row>& rows) {
  {
    // row_group becomes each row's destination (row counts stay far below 2^31).
    std::vector<std::size_t> next(offsets.begin(), offsets.end() - 1);
    for (int& slot : row_group) slot = static_cast<int>(next[static_cast<std::size_t>(slot)]++);
  }
  std::vector<int>& destination = row_group;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    while (static_cast<std::size_t>(destination[i]) != i) {
      const auto j = static_cast<std::size_t>(destination[i]);
      std::swap(rows[i], rows[j]);
      std::swap(destination[i], destination[j]);
    }
  }
  std::vector<int>().swap(row_group);
}

// Places rows (with their user) into per-user slices: a counting sort by user applied in
// place (each row's destination, then the permutation's cycles), then each slice sorted by
// `less`. In place because the rows are most of a large store's history (at 1M users,
// tens of millions of rows): a second copy would double the load's peak memory.
// `row_user` is consumed (it becomes the destinations, then is freed).
template <typename Row, typename Less>
void group_by_user(int users, std::vector<int>& row_user, std::vector<Row>& rows,
                   std::vector<std::size_t>& offsets, Less less) {
  offsets.assign(static_cast<std::size_t>(users) + 1, 0);
  for (int u : row_user) ++offsets[static_cast<std::size_t>(u) + 1];
  for (int u = 0; u < users; ++u) offsets[u + 1] += offsets[u];
  permute_into_groups(row_user, offsets, rows);
  for (int u = 0; u < users; ++u) {
    std::sort(rows.begin() + static_cast<std::ptrdiff_t>(offsets[u]),
              rows.begin() + static_cast<std::ptrdiff_t>(offsets[u + 1]), less);
  }
}

// The same for the rows of one slice of users (`users`, the only users of any row;
// position[u] is u's index in `users`): only these users' ranges are set, so a slice costs
// its own rows and users, not the whole history's users.
template <typename Row, typename Less>
void group_by_slice_user(std::span<const int> users, const std::vector<int>& position,
                         std::vector<int>& row_user, std::vector<Row>& rows,
                         std::vector<UsageHistory::RowRange>& ranges, Less less) {
  std::vector<std::size_t> offsets(users.size() + 1, 0);
  for (int& u : row_user) {
    u = position[static_cast<std::size_t>(u)];  // now the user's index in the slice
    ++offsets[static_cast<std::size_t>(u) + 1];
  }
  for (std::size_t i = 0; i < users.size(); ++i) offsets[i + 1] += offsets[i];
  permute_into_groups(row_user, offsets, rows);
  for (std::size_t i = 0; i < users.size(); ++i) {
    ranges[static_cast<std::size_t>(users[i])] = {offsets[i], offsets[i + 1]};
    std::sort(rows.begin() + static_cast<std::ptrdiff_t>(offsets[i]),
              rows.begin() + static_cast<std::ptrdiff_t>(offsets[i + 1]), less);
  }
}

}  // namespace

// Rows read but not yet laid out per user, with each row's user.
struct UsageHistory::PendingRows {
  std::vector<int> day_user, feature_day_user;
  void add(const UsageHistory& h, const UserDayRollup& row) {
    if (row.day < h.options_.from_day || row.day >= h.options_.to_day) return;
    const int u = h.user_of(row.user_key);
    if (u < 0) return;
    day_user.push_back(u);
    h.days_.push_back(compact(row));
  }
  void add(const UsageHistory& h, const FeatureDayRollup& row) {
    if (row.day < h.options_.from_day || row.day >= h.options_.to_day) return;
    const int u = h.user_of(row.user_key);
    const int f =
        row.feature_key < h.feature_of_key_.size() ? h.feature_of_key_[row.feature_key] : -1;
    if (u < 0 || f < 0) return;
    feature_day_user.push_back(u);
    h.feature_days_.push_back(compact(row, f));
  }
};

// Collects users, features and the tier timeline (and, for in-memory histories, the rows),
// then lays them out per user.
class UsageHistory::Builder {
 public:
  explicit Builder(const UsageLoadOptions& options) { h_.options_ = options; }

  // Only what the engines read (id, tier, signup).
  void add_registered_user(const User& user) {
    auto [it, inserted] = index_.try_emplace(user.user_id, h_.user_count());
    if (inserted) {
      h_.user_ids_.push_back(user.user_id);
      h_.tiers_.push_back(user.tier);
      h_.signups_.push_back(user.signup_at);
    } else {
      h_.tiers_[it->second] = user.tier;
      h_.signups_[it->second] = user.signup_at;
    }
  }
  // The user of an event key; -1 when it is not loaded.
  void map_user_key(std::uint32_t key, const std::string& user_id) {
    auto found = index_.find(user_id);
    int u = found == index_.end() ? -1 : found->second;
    if (u < 0 && h_.options_.include_unregistered_users) {
      u = h_.user_count();
      index_.emplace(user_id, u);
      h_.user_ids_.push_back(user_id);
      h_.tiers_.push_back(Tier::kFree);
      h_.signups_.push_back(0);
    }
    auto& user_of_key = h_.user_of_key_;
    if (key >= user_of_key.size()) user_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
    user_of_key[key] = u;
  }
  void set_catalog(std::vector<Feature> catalog) {
    std::sort(catalog.begin(), catalog.end(),
              [](const Feature& a, const Feature& b) { return a.name < b.name; });
    catalog.erase(std::unique(catalog.begin(), catalog.end(),
                              [](const Feature& a, const Feature& b) { return a.name == b.name; }),
                  catalog.end());
    h_.features_ = std::move(catalog);
    for (const auto& feature : h_.features_) add_feature_name(feature.name);
  }
  // Event-only feature names are appended in name order (call with all keys at once).
  void map_feature_keys(std::vector<std::pair<std::uint32_t, std::string>> keys) {
    std::sort(keys.begin(), keys.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
    auto& feature_of_key = h_.feature_of_key_;
    for (const auto& [key, name] : keys) {
      if (key >= feature_of_key.size()) {
        feature_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
      }
      feature_of_key[key] = add_feature_name(name);
    }
  }
  void add(const UserDayRollup& row) { rows_.add(h_, row); }
  void add(const FeatureDayRollup& row) { rows_.add(h_, row); }
  void add(const TierChangeRollup& row) {
    const int u = h_.user_of(row.user_key);
    if (u < 0) return;
    change_user_.push_back(u);
    h_.changes_.push_back({row.at, row.kind, row.from_tier, row.to_tier});
  }
  UsageHistory& history() { return h_; }
  UsageHistory finish() {
    // The builder's hash index goes with it; the history looks ids up in sorted order.
    std::unordered_map<std::string, int>().swap(index_);
    auto& order = h_.users_by_id_;
    order.resize(h_.user_ids_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return h_.user_ids_[a] < h_.user_ids_[b]; });
    // An in-memory history is one slice of every user.
    std::vector<int> everyone(h_.user_ids_.size());
    for (std::size_t i = 0; i < everyone.size(); ++i) everyone[i] = static_cast<int>(i);
    h_.slice_position_ = everyone;
    h_.day_ranges_.assign(everyone.size(), {});
    h_.feature_day_ranges_.assign(everyone.size(), {});
    h_.place_rows(everyone, rows_);
    group_by_user(h_.user_count(), change_user_, h_.changes_, h_.change_offsets_,
                  [](const TierChange& a, const TierChange& b) { return a.at < b.at; });
    return std::move(h_);
  }

 private:
  int add_feature_name(const std::string& name) {
    auto [it, inserted] =
        h_.feature_index_.try_emplace(name, static_cast<int>(h_.feature_names_.size()));
    if (inserted) h_.feature_names_.push_back(name);
    return it->second;
  }

  UsageHistory h_;
  std::unordered_map<std::string, int> index_;  // user id -> index while building
  PendingRows rows_;
  std::vector<int> change_user_;
};

void UsageHistory::place_rows(std::span<const int> users, PendingRows& pending) const {
  group_by_slice_user(users, slice_position_, pending.day_user, days_, day_ranges_,
                      [](const Day& a, const Day& b) { return a.day < b.day; });
  group_by_slice_user(users, slice_position_, pending.feature_day_user, feature_days_,
                      feature_day_ranges_,
                [](const FeatureDay& a, const FeatureDay& b) {
                  return a.day != b.day ? a.day < b.day : a.feature < b.feature;
                });
}

Status UsageHistory::read_rows(Store& store, const RollupQuery& query,
                               std::span<const int> users) const {
  days_.clear();
  feature_days_.clear();
  PendingRows pending;
  // User-day and feature-day rows fill disjoint parts of `pending` and of the rows.
  FULCRUM_RETURN_IF_ERROR(scan_day_rollups_at_once(
      store, query, [&](const UserDayRollup& row) { pending.add(*this, row); }, query,
      [&](const FeatureDayRollup& row) { pending.add(*this, row); }));
  place_rows(users, pending);
  return Status::ok();
}

Status UsageHistory::for_each_slice(
    const std::function<Status(std::span<const int> users)>& visit) const {
  if (store_ == nullptr) {
    std::vector<int> everyone(static_cast<std::size_t>(user_count()));
    for (int u = 0; u < user_count(); ++u) everyone[static_cast<std::size_t>(u)] = u;
    return visit(everyone);
  }
  Status result = Status::ok();
  for (std::size_t slice = 0; slice < slice_users_.size() && result.is_ok(); ++slice) {
    if (slice_users_[slice].empty()) continue;
    RollupQuery query{options_.from_day, options_.to_day, std::nullopt, std::nullopt};
    query.user_key = static_cast<std::uint32_t>(slice * keys_per_slice_);
    query.user_key_end = static_cast<std::uint32_t>(
        std::min<std::uint64_t>((slice + 1) * std::uint64_t{keys_per_slice_}, 0xFFFFFFFFULL));
    result = read_rows(*store_, query, slice_users_[slice]);
    if (result.is_ok()) result = visit(slice_users_[slice]);
    // Outside its slice a user has no rows loaded.
    for (int u : slice_users_[slice]) {
      day_ranges_[static_cast<std::size_t>(u)] = {};
      feature_day_ranges_[static_cast<std::size_t>(u)] = {};
    }
  }
  // The last slice's rows go: a streamed history holds none between walks.
  std::vector<Day>().swap(days_);
  std::vector<FeatureDay>().swap(feature_days_);
  return result;
}

User UsageHistory::user(int u) const {
  User record;
  record.user_id = user_ids_[u];
  record.tier = tiers_[u];
  record.signup_at = signups_[u];
  return record;
}

int UsageHistory::find_user(std::string_view user_id) const {
  auto it = std::lower_bound(users_by_id_.begin(), users_by_id_.end(), user_id,
                             [&](int u, std::string_view id) { return user_ids_[u] < id; });
  return it != users_by_id_.end() && user_ids_[*it] == user_id ? *it : -1;
}

int UsageHistory::find_feature(std::string_view name) const {
  auto it = feature_index_.find(std::string(name));
  return it == feature_index_.end() ? -1 : it->second;
}

std::span<const UsageHistory::Day> UsageHistory::days_between(int u, UsageDay from_day,
                                                              UsageDay to_day) const {
  auto rows = days(u);
  auto lo = std::partition_point(rows.begin(), rows.end(),
                                 [&](const Day& d) { return d.day < from_day; });
  auto hi = std::partition_point(lo, rows.end(), [&](const Day& d) { return d.day < to_day; });
  return {lo, hi};
}

std::span<const UsageHistory::FeatureDay> UsageHistory::feature_days_between(
    int u, UsageDay from_day, UsageDay to_day) const {
  auto rows = feature_days(u);
  auto lo = std::partition_point(rows.begin(), rows.end(),
                                 [&](const FeatureDay& d) { return d.day < from_day; });
  auto hi =
      std::partition_point(lo, rows.end(), [&](const FeatureDay& d) { return d.day < to_day; });
  return {lo, hi};
}

Tier UsageHistory::tier_at(int u, UnixSeconds t) const {
  Tier tier = tiers_[u];
  auto changes = tier_changes(u);
  for (auto it = changes.rbegin(); it != changes.rend() && it->at >= t; ++it) tier = it->from_tier;
  return tier;
}

// The users, catalog, keys and tier timeline of a whole store into `builder`.
Status UsageHistory::read_skeleton(Store& store, Builder& builder) {
  FULCRUM_RETURN_IF_ERROR(store.scan_users([&](const User& u) { builder.add_registered_user(u); }));
  auto catalog = store.list_features();
  if (!catalog.is_ok()) return catalog.status();
  builder.set_catalog(std::move(*catalog));
  std::vector<std::pair<std::uint32_t, std::string>> feature_keys;
  FULCRUM_RETURN_IF_ERROR(store.scan_feature_keys(
      [&](std::uint32_t key, const std::string& name) { feature_keys.emplace_back(key, name); }));
  builder.map_feature_keys(std::move(feature_keys));
  FULCRUM_RETURN_IF_ERROR(store.scan_user_keys(
      [&](std::uint32_t key, const std::string& user_id) { builder.map_user_key(key, user_id); }));
  return store.scan_tier_changes(std::nullopt,
                                 [&](const TierChangeRollup& row) { builder.add(row); });
}

Result<UsageHistory> UsageHistory::load(Store& store, const UsageLoadOptions& options) {
  Builder builder(options);
  FULCRUM_RETURN_IF_ERROR(read_skeleton(store, builder));
  const RollupQuery query{options.from_day, options.to_day, std::nullopt, std::nullopt};
  FULCRUM_RETURN_IF_ERROR(
      store.scan_user_days(query, [&](const UserDayRollup& row) { builder.add(row); }));
  FULCRUM_RETURN_IF_ERROR(
      store.scan_feature_days(query, [&](const FeatureDayRollup& row) { builder.add(row); }));
  return builder.finish();
}

Result<UsageHistory> UsageHistory::open(Store& store, const UsageLoadOptions& options,
                                        std::uint32_t keys_per_slice) {
  if (keys_per_slice == 0) return invalid_argument("must be positive", "keys_per_slice");
  Builder builder(options);
  FULCRUM_RETURN_IF_ERROR(read_skeleton(store, builder));
  UsageHistory history = builder.finish();
  history.store_ = &store;
  history.keys_per_slice_ = keys_per_slice;
  // Each user's slice is its key's; users without a key (no events) join the first.
  std::vector<int> slice_of(static_cast<std::size_t>(history.user_count()), 0);
  for (std::size_t key = 0; key < history.user_of_key_.size(); ++key) {
    const int u = history.user_of_key_[key];
    if (u >= 0) slice_of[static_cast<std::size_t>(u)] = static_cast<int>(key / keys_per_slice);
  }
  history.slice_users_.resize(
      history.user_of_key_.empty() ? 1 : (history.user_of_key_.size() - 1) / keys_per_slice + 1);
  for (int u = 0; u < history.user_count(); ++u) {
    auto& members = history.slice_users_[static_cast<std::size_t>(slice_of[static_cast<std::size_t>(u)])];
    history.slice_position_[static_cast<std::size_t>(u)] = static_cast<int>(members.size());
    members.push_back(u);
  }
  return history;
}

Result<UsageHistory> UsageHistory::load_user(Store& store, const std::string& user_id,
                                             const UsageLoadOptions& options) {
  Builder builder(options);
  auto user = store.get_user(user_id);
  if (!user.is_ok()) return user.status();
  if (user->has_value()) builder.add_registered_user(**user);
  auto catalog = store.list_features();
  if (!catalog.is_ok()) return catalog.status();
  builder.set_catalog(std::move(*catalog));
  std::vector<std::pair<std::uint32_t, std::string>> feature_keys;
  FULCRUM_RETURN_IF_ERROR(store.scan_feature_keys(
      [&](std::uint32_t key, const std::string& name) { feature_keys.emplace_back(key, name); }));
  builder.map_feature_keys(std::move(feature_keys));
  auto key = store.find_user_key(user_id);
  if (!key.is_ok()) return key.status();
  if (!user->has_value() && (!key->has_value() || !options.include_unregistered_users)) {
    return not_found("unknown user: " + user_id);
  }
  if (key->has_value()) {
    builder.map_user_key(**key, user_id);
    const RollupQuery query{options.from_day, options.to_day, **key};
    FULCRUM_RETURN_IF_ERROR(
        store.scan_user_days(query, [&](const UserDayRollup& row) { builder.add(row); }));
    FULCRUM_RETURN_IF_ERROR(
        store.scan_feature_days(query, [&](const FeatureDayRollup& row) { builder.add(row); }));
    FULCRUM_RETURN_IF_ERROR(
        store.scan_tier_changes(**key, [&](const TierChangeRollup& row) { builder.add(row); }));
  }
  return builder.finish();
}

UsageHistory UsageHistory::from_events(const EventBatch& events, const UsageLoadOptions& options) {
  Builder builder(options);
  for (const auto& user : events.users) builder.add_registered_user(user);
  builder.set_catalog(events.features);
  // Keys in order of first appearance, as a store would hand them out.
  std::unordered_map<std::string, std::uint32_t> user_keys, feature_keys;
  auto user_key = [&](const std::string& user_id) {
    auto [it, inserted] =
        user_keys.try_emplace(user_id, static_cast<std::uint32_t>(user_keys.size() + 1));
    if (inserted) builder.map_user_key(it->second, user_id);
    return it->second;
  };
  auto feature_key = [&](const std::string& name) {
    return feature_keys.try_emplace(name, static_cast<std::uint32_t>(feature_keys.size() + 1))
        .first->second;
  };
  for (const auto& e : events.feature_usage) feature_key(e.feature);
  for (const auto& e : events.paywall_hits) feature_key(e.feature);
  std::vector<std::pair<std::uint32_t, std::string>> named_features;
  for (const auto& [name, key] : feature_keys) named_features.emplace_back(key, name);
  builder.map_feature_keys(std::move(named_features));

  RollupAccumulator rollups;
  for (const auto& e : events.feature_usage) {
    rollups.add_usage(user_key(e.user_id), feature_key(e.feature), e.at, e.count);
  }
  for (const auto& e : events.sessions) {
    rollups.add_session(user_key(e.user_id), e.at, e.duration_seconds);
  }
  for (const auto& e : events.payments) {
    rollups.add_payment(user_key(e.user_id), e.at, e.succeeded, e.amount_minor);
  }
  for (const auto& e : events.paywall_hits) {
    rollups.add_paywall_hit(user_key(e.user_id), feature_key(e.feature), e.at);
  }
  for (const auto& e : events.subscription_changes) {
    builder.add(TierChangeRollup{user_key(e.user_id), e.at, e.kind, e.from_tier, e.to_tier});
  }
  for (const auto& row : rollups.user_days()) builder.add(row);
  for (const auto& row : rollups.feature_days()) builder.add(row);
  return builder.finish();
}

}  // namespace fulcrum
