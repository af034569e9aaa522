// Each user's activity in the whole days before a day of their own (e.g. the day of their
// first exposure to a test), summed from the usage rollups: what a covariate model
// (experiments' CUPAC) knows about a user before the test could have changed anything.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "store/rollup.h"

namespace fulcrum {

class Store;

struct ActivityBefore {
  double active_days = 0;  // days with any session, feature use, payment or paywall hit
  double sessions = 0;
  double session_minutes = 0;
  double feature_uses = 0;  // summed use counts
  double paywall_hits = 0;
  double payments_succeeded = 0;
  double payments_failed = 0;
  double amount_succeeded = 0;  // major units (minor / 100)
};

// For every i: user_keys[i]'s rollups of the `window_days` days [days[i] - window_days,
// days[i]); a user without a key (kNoRollupKey) gets zeros. One scan of the user-day rollups of the
// days the windows span (never the raw events); memory is one row per asked user plus a key index.
Result<std::vector<ActivityBefore>> activity_before(Store& store,
                                                    std::span<const std::uint32_t> user_keys,
                                                    std::span<const UsageDay> days,
                                                    int window_days);

}  // namespace fulcrum
