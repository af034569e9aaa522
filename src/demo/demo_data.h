// Synthetic digital-bank dataset with planted, documented effects (docs/demo-data.md).
//
// generate_demo_data() walks the period day by day and hands batches of users, features and
// events to a sink (usually Store::ingest), so memory stays bounded by one batch plus a small
// per-user profile. Output depends only on DemoOptions: every random draw comes from our own
// splitmix64/xoshiro256** streams keyed by (seed, user, day), never from <random>
// distributions, so the same seed and end date give identical data on any machine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/model.h"

namespace fulcrum::demo {

struct DemoOptions {
  std::int64_t users = 50'000;
  int days = 90;
  std::uint64_t seed = 42;
  // The data covers the `days` whole UTC days before this instant (normally a midnight):
  // [end - days * 86400, end).
  UnixSeconds end = 0;
  std::size_t batch_records = 250'000;  // records per sink call (the last one may be smaller)
};

// Ground truth the generator planted, for tests of the engines (the data itself carries
// no labels). Days are 0-based indices into the period.
struct DemoGroundTruth {
  struct Churner {
    std::string user_id;
    int churn_day = 0;  // first day with no activity at all
    bool paid = false;  // cancelled a paid tier on churn_day
    bool unrecovered_payment_failure = false;
  };
  struct Upgrader {
    std::string user_id;
    int upgrade_day = 0;
    Tier to_tier = Tier::kPlus;
  };
  struct Abandonment {
    std::string user_id;
    std::string feature;
    int last_use_day = 0;  // no use of `feature` from last_use_day + 1 on
  };
  std::vector<Churner> churners;
  std::vector<Upgrader> upgraders;
  std::vector<Abandonment> abandonments;
};

struct DemoSummary {
  UnixSeconds start = 0, end = 0;
  std::int64_t users = 0, features = 0, feature_usage = 0, sessions = 0, subscription_changes = 0,
               payments = 0, paywall_hits = 0, exposures = 0, metric_events = 0;
  std::int64_t batches = 0;
  // FNV-1a over every generated record in order: equal checksums mean identical data.
  std::uint64_t checksum = 0;
  DemoGroundTruth truth;

  std::int64_t events() const {
    return feature_usage + sessions + subscription_changes + payments + paywall_hits + exposures +
           metric_events;
  }
};

// The ~20 features of the demo bank with tier, category, monthly cost and value.
std::vector<Feature> demo_features();

// Generates the dataset, calling `sink` with each batch in time order (users and features
// first). Stops and returns the sink's error if it fails; kInvalidArgument for bad options.
Result<DemoSummary> generate_demo_data(const DemoOptions& options,
                                       const std::function<Status(const EventBatch&)>& sink);

}  // namespace fulcrum::demo
