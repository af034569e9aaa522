#include "store/store.h"

#include <future>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace fulcrum {

bool is_slice_attribute_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxSliceAttributeBytes) return false;
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!letter(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-') return false;
  }
  return true;
}

Status validate_period_edges(const std::vector<UnixSeconds>& edges) {
  if (edges.size() < 2 || edges.size() > kMaxMetricSumPeriods + 1) {
    return invalid_argument("needs 2 to " + std::to_string(kMaxMetricSumPeriods + 1) + " edges",
                            "edges");
  }
  for (std::size_t i = 1; i < edges.size(); ++i) {
    if (edges[i] <= edges[i - 1]) return invalid_argument("must be strictly ascending", "edges");
  }
  return Status::ok();
}

Status scan_day_rollups_at_once(
    Store& store, const RollupQuery& user_days,
    const std::function<void(const UserDayRollup&)>& visit_user_day,
    const RollupQuery& feature_days,
    const std::function<void(const FeatureDayRollup&)>& visit_feature_day) {
  auto feature_rows = std::async(std::launch::async, [&] {
    return store.scan_feature_days(feature_days, visit_feature_day);
  });
  const Status user_rows = store.scan_user_days(user_days, visit_user_day);
  const Status feature_status = feature_rows.get();
  FULCRUM_RETURN_IF_ERROR(user_rows);
  return feature_status;
}

Result<std::unique_ptr<Store>> open_store(const std::string& location) {
  if (location.rfind("postgres://", 0) == 0 || location.rfind("postgresql://", 0) == 0) {
    auto store = PostgresStore::open(location);
    if (!store.is_ok()) return store.status();
    return std::unique_ptr<Store>(std::move(store).value());
  }
  if (location.empty()) return invalid_argument("store location is empty", "store");
  auto store = SqliteStore::open(location);
  if (!store.is_ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store).value());
}

Status check_pre_window_edges(std::span<const UnixSeconds> pre_window_edges) {
  if (pre_window_edges.empty()) return Status::ok();
  const auto fail = [](const char* why) { return invalid_argument(why, "pre_window_edges"); };
  if (pre_window_edges.size() < 2 || pre_window_edges.size() > 9) {
    return fail("none, or 2 to 9 edges (1 to 8 windows)");
  }
  if (pre_window_edges.front() != 0) return fail("the first edge is 0 (the first exposure)");
  for (std::size_t i = 1; i < pre_window_edges.size(); ++i) {
    if (pre_window_edges[i] <= pre_window_edges[i - 1]) return fail("edges must rise strictly");
  }
  if (pre_window_edges.back() > 3650 * kSecondsPerDay) return fail("at most 3650 days back");
  return Status::ok();
}

}  // namespace fulcrum
