// A small deterministic synthetic bank-app history for tests and benchmarks of the
// recommendation and upgrade-timing models (the product demo data lives in src/demo).
// Planted structure: users belong to co-usage clusters (each cluster adopts its own set of
// features; two features are popular with everyone), free users who will upgrade hit the
// paywall more and more in the two weeks before upgrading, and churners use the app less
// in the three weeks before they stop, with some failed payments.
#pragma once

#include <cstdint>

#include "store/model.h"

namespace fulcrum {

struct SyntheticUsageOptions {
  int users = 2000;
  int clusters = 4;
  int days = 120;
  std::uint64_t seed = 1;
  UnixSeconds start = 1'700'006'400;  // 2023-11-15T00:00:00Z
  double upgrader_share = 0.25;       // of free users
  double churner_share = 0.15;
};

// 20 features (12 free, 4 plus, 4 premium) and the users' events over `days` days from
// `start`; the last event is before start + days.
EventBatch make_synthetic_usage(const SyntheticUsageOptions& options);

}  // namespace fulcrum
