#include "usage/activity_before.h"

#include <algorithm>
#include <limits>

#include "store/store.h"

namespace fulcrum {

Result<std::vector<ActivityBefore>> activity_before(Store& store,
                                                    std::span<const std::uint32_t> user_keys,
                                                    std::span<const UsageDay> days,
                                                    int window_days) {
  if (user_keys.size() != days.size()) {
    return invalid_argument("one day per user", "days");
  }
  if (window_days < 1 || window_days > 3660) {
    return invalid_argument("must be between 1 and 3660 days", "window_days");
  }
  std::vector<ActivityBefore> out(user_keys.size());
  // user key -> position + 1 (0: not asked). Keys are dense from 0, so a vector does; a user
  // asked twice (never, for first exposures) keeps the last position.
  std::uint32_t max_key = 0;
  UsageDay from_day = std::numeric_limits<UsageDay>::max();
  UsageDay to_day = std::numeric_limits<UsageDay>::min();
  for (std::size_t i = 0; i < user_keys.size(); ++i) {
    if (user_keys[i] == kNoRollupKey) continue;
    max_key = std::max(max_key, user_keys[i]);
    from_day = std::min(from_day, days[i] - window_days);
    to_day = std::max(to_day, days[i]);
  }
  if (from_day >= to_day) return out;
  std::vector<std::uint32_t> position_of_key(static_cast<std::size_t>(max_key) + 1, 0);
  for (std::size_t i = 0; i < user_keys.size(); ++i) {
    if (user_keys[i] != kNoRollupKey)
      position_of_key[user_keys[i]] = static_cast<std::uint32_t>(i + 1);
  }
  FULCRUM_RETURN_IF_ERROR(store.scan_user_days(
      RollupQuery{.from_day = from_day, .to_day = to_day, .user_key = std::nullopt},
      [&](const UserDayRollup& row) {
        if (row.user_key > max_key) return;
        const std::uint32_t position = position_of_key[row.user_key];
        if (position == 0) return;
        const UsageDay day = days[position - 1];
        if (row.day < day - window_days || row.day >= day) return;
        ActivityBefore& a = out[position - 1];
        a.active_days += 1;
        a.sessions += static_cast<double>(row.sessions);
        a.session_minutes += static_cast<double>(row.session_seconds) / 60.0;
        a.feature_uses += static_cast<double>(row.uses);
        a.paywall_hits += static_cast<double>(row.paywall_hits);
        a.payments_succeeded += static_cast<double>(row.payments_succeeded);
        a.payments_failed += static_cast<double>(row.payments_failed);
        a.amount_succeeded += static_cast<double>(row.amount_succeeded_minor) / 100.0;
      }));
  return out;
}

}  // namespace fulcrum
