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
  {
    // row_user becomes each row's destination (row counts stay far below 2^31).
    std::vector<std::size_t> next(offsets.begin(), offsets.end() - 1);
    for (int& slot : row_user) slot = static_cast<int>(next[slot]++);
  }
  std::vector<int>& destination = row_user;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    while (static_cast<std::size_t>(destination[i]) != i) {
      const auto j = static_cast<std::size_t>(destination[i]);
      std::swap(rows[i], rows[j]);
      std::swap(destination[i], destination[j]);
    }
  }
  std::vector<int>().swap(row_user);
  for (int u = 0; u < users; ++u) {
    std::sort(rows.begin() + static_cast<std::ptrdiff_t>(offsets[u]),
              rows.begin() + static_cast<std::ptrdiff_t>(offsets[u + 1]), less);
  }
}

}  // namespace

// Collects users, features and rows, then lays them out per user.
class UsageHistory::Builder {
 public:
  explicit Builder(const UsageLoadOptions& options) : options_(options) {}

  void add_registered_user(const User& user) {
    auto [it, inserted] = h_.user_index_.try_emplace(user.user_id, h_.user_count());
    if (inserted) {
      h_.users_.push_back(user);
    } else {
      h_.users_[it->second] = user;
    }
  }
  // The user of an event key; -1 when it is not loaded.
  void map_user_key(std::uint32_t key, const std::string& user_id) {
    int u = h_.find_user(user_id);
    if (u < 0 && options_.include_unregistered_users) {
      u = h_.user_count();
      h_.user_index_.emplace(user_id, u);
      User user;
      user.user_id = user_id;
      h_.users_.push_back(std::move(user));
    }
    if (key >= user_of_key_.size()) user_of_key_.resize(static_cast<std::size_t>(key) + 1, -1);
    user_of_key_[key] = u;
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
    for (const auto& [key, name] : keys) {
      if (key >= feature_of_key_.size()) {
        feature_of_key_.resize(static_cast<std::size_t>(key) + 1, -1);
      }
      feature_of_key_[key] = add_feature_name(name);
    }
  }
  void add(const UserDayRollup& row) {
    if (row.day < options_.from_day || row.day >= options_.to_day) return;
    const int u = user_of(row.user_key);
    if (u < 0) return;
    day_user_.push_back(u);
    h_.days_.push_back(compact(row));
  }
  void add(const FeatureDayRollup& row) {
    if (row.day < options_.from_day || row.day >= options_.to_day) return;
    const int u = user_of(row.user_key);
    const int f = row.feature_key < feature_of_key_.size() ? feature_of_key_[row.feature_key] : -1;
    if (u < 0 || f < 0) return;
    feature_day_user_.push_back(u);
    h_.feature_days_.push_back(compact(row, f));
  }
  void add(const TierChangeRollup& row) {
    const int u = user_of(row.user_key);
    if (u < 0) return;
    change_user_.push_back(u);
    h_.changes_.push_back({row.at, row.kind, row.from_tier, row.to_tier});
  }
  UsageHistory finish() {
    const int users = h_.user_count();
    group_by_user(users, day_user_, h_.days_, h_.day_offsets_,
                  [](const Day& a, const Day& b) { return a.day < b.day; });
    group_by_user(users, feature_day_user_, h_.feature_days_, h_.feature_day_offsets_,
                  [](const FeatureDay& a, const FeatureDay& b) {
                    return a.day != b.day ? a.day < b.day : a.feature < b.feature;
                  });
    group_by_user(users, change_user_, h_.changes_, h_.change_offsets_,
                  [](const TierChange& a, const TierChange& b) { return a.at < b.at; });
    return std::move(h_);
  }

 private:
  int user_of(std::uint32_t key) const {
    return key < user_of_key_.size() ? user_of_key_[key] : -1;
  }
  int add_feature_name(const std::string& name) {
    auto [it, inserted] =
        h_.feature_index_.try_emplace(name, static_cast<int>(h_.feature_names_.size()));
    if (inserted) h_.feature_names_.push_back(name);
    return it->second;
  }

  UsageLoadOptions options_;
  UsageHistory h_;
  std::vector<int> user_of_key_, feature_of_key_;
  std::vector<int> day_user_, feature_day_user_, change_user_;
};

int UsageHistory::find_user(std::string_view user_id) const {
  auto it = user_index_.find(std::string(user_id));
  return it == user_index_.end() ? -1 : it->second;
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
  Tier tier = users_[u].tier;
  auto changes = tier_changes(u);
  for (auto it = changes.rbegin(); it != changes.rend() && it->at >= t; ++it) tier = it->from_tier;
  return tier;
}

Result<UsageHistory> UsageHistory::load(Store& store, const UsageLoadOptions& options) {
  Builder builder(options);
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
  const RollupQuery query{options.from_day, options.to_day, std::nullopt};
  FULCRUM_RETURN_IF_ERROR(
      store.scan_user_days(query, [&](const UserDayRollup& row) { builder.add(row); }));
  FULCRUM_RETURN_IF_ERROR(
      store.scan_feature_days(query, [&](const FeatureDayRollup& row) { builder.add(row); }));
  FULCRUM_RETURN_IF_ERROR(store.scan_tier_changes(
      std::nullopt, [&](const TierChangeRollup& row) { builder.add(row); }));
  return builder.finish();
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
