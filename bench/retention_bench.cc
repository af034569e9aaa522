// Retention triggers over 50,000 users and 5M events (goal: under 2 s end to end).
// Baselines in the same run: a single bare full scan of the same event tables (the floor
// for any one-pass approach), and a naive aggregation into per-user event lists keyed by
// user id (std::unordered_map<std::string, std::vector<...>>), before any trigger logic.
#include <benchmark/benchmark.h>

#include <unordered_map>

#include "core/time.h"
#include "lifecycle/retention_triggers.h"
#include "retention_bench_data.h"

namespace fulcrum::bench {
namespace {

Store& bench_store() {
  static std::unique_ptr<Store> store = open_bench_store();
  return *store;
}

RetentionTriggerConfig bench_config() { return RetentionTriggerConfig{}; }

// Everything: one pass over the store into daily arrays, then all five triggers (including
// training and scoring the churn model).
void BM_TriggersEndToEnd(benchmark::State& state) {
  Store& store = bench_store();
  auto config = bench_config();
  std::size_t matched = 0;
  for (auto _ : state) {
    auto activity = load_user_activity(store, kBenchNow, config.history_days());
    auto matches = detect_retention_triggers(*activity, config);
    if (!matches.is_ok()) state.SkipWithError(matches.status().to_string().c_str());
    matched = 0;
    for (const auto& [type, list] : *matches) matched += list.size();
    benchmark::DoNotOptimize(matched);
  }
  state.counters["matched_users"] = static_cast<double>(matched);
}
BENCHMARK(BM_TriggersEndToEnd)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// Only the trigger logic on a prebuilt aggregate.
void BM_TriggersOnAggregate(benchmark::State& state) {
  auto config = bench_config();
  auto activity = load_user_activity(bench_store(), kBenchNow, config.history_days());
  for (auto _ : state) {
    auto matches = detect_retention_triggers(*activity, config);
    benchmark::DoNotOptimize(matches);
  }
}
BENCHMARK(BM_TriggersOnAggregate)->Unit(benchmark::kMillisecond)->UseRealTime();

// Baseline 1: bare scans of the same tables, counting rows.
void BM_BaselineBareScan(benchmark::State& state) {
  Store& store = bench_store();
  TimeRange range{kBenchNow - bench_config().history_days() * kSecondsPerDay, kBenchNow};
  std::int64_t rows = 0;
  for (auto _ : state) {
    rows = 0;
    (void)store.scan_sessions(range, [&](const SessionEvent&) { ++rows; });
    (void)store.scan_feature_usage(range, [&](const FeatureUsageEvent&) { ++rows; });
    (void)store.scan_payments(range, [&](const PaymentEvent&) { ++rows; });
    benchmark::DoNotOptimize(rows);
  }
  state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_BaselineBareScan)->Unit(benchmark::kMillisecond)->UseRealTime();

// Baseline 2: the naive shape: per-user vectors of (time, feature) under string keys.
void BM_BaselineNaivePerUserLists(benchmark::State& state) {
  Store& store = bench_store();
  TimeRange range{kBenchNow - bench_config().history_days() * kSecondsPerDay, kBenchNow};
  struct Event {
    UnixSeconds at;
    std::string feature;
  };
  for (auto _ : state) {
    std::unordered_map<std::string, std::vector<Event>> by_user;
    (void)store.scan_sessions(range, [&](const SessionEvent& event) {
      by_user[event.user_id].push_back({event.at, {}});
    });
    (void)store.scan_feature_usage(range, [&](const FeatureUsageEvent& event) {
      by_user[event.user_id].push_back({event.at, event.feature});
    });
    // usage_drop alone over the lists, to show the per-user work that remains.
    std::int64_t dropped = 0;
    for (const auto& [user, list] : by_user) {
      std::int64_t recent = 0, baseline = 0;
      for (const auto& event : list) {
        if (event.at >= kBenchNow - 7 * kSecondsPerDay) {
          ++recent;
        } else if (event.at >= kBenchNow - 35 * kSecondsPerDay) {
          ++baseline;
        }
      }
      dropped += baseline >= 20 && recent * 4 <= baseline / 2;
    }
    benchmark::DoNotOptimize(dropped);
  }
}
BENCHMARK(BM_BaselineNaivePerUserLists)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace fulcrum::bench

BENCHMARK_MAIN();
