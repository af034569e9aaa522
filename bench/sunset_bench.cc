// Feature sunset analysis of all 15 features over 50,000 users and 12 weeks of events
// (goal: under 1 s). Baseline in the same run: a single bare scan of the same tables.
#include <benchmark/benchmark.h>

#include "core/time.h"
#include "retention_bench_data.h"
#include "sunset/sunset.h"

namespace fulcrum::bench {
namespace {

Store& bench_store() {
  static std::unique_ptr<Store> store = open_bench_store();
  return *store;
}

void BM_SunsetEndToEnd(benchmark::State& state) {
  Store& store = bench_store();
  ManualClock clock(kBenchNow);
  SunsetConfig config;
  for (auto _ : state) {
    auto analyses = analyze_feature_sunset(store, clock, config);
    if (!analyses.is_ok()) state.SkipWithError(analyses.status().to_string().c_str());
    benchmark::DoNotOptimize(analyses);
  }
}
BENCHMARK(BM_SunsetEndToEnd)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SunsetOnAggregate(benchmark::State& state) {
  SunsetConfig config;
  auto input = load_sunset_input(bench_store(), kBenchNow, config);
  for (auto _ : state) {
    auto analyses = analyze_feature_sunset(*input, config);
    benchmark::DoNotOptimize(analyses);
  }
}
BENCHMARK(BM_SunsetOnAggregate)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_BaselineBareScan(benchmark::State& state) {
  Store& store = bench_store();
  TimeRange range{kBenchNow - 84 * kSecondsPerDay, kBenchNow};
  std::int64_t rows = 0;
  for (auto _ : state) {
    rows = 0;
    (void)store.scan_sessions(range, [&](const SessionEvent&) { ++rows; });
    (void)store.scan_feature_usage(range, [&](const FeatureUsageEvent&) { ++rows; });
    (void)store.scan_payments(TimeRange{kBenchNow - 30 * kSecondsPerDay, kBenchNow},
                              [&](const PaymentEvent&) { ++rows; });
    benchmark::DoNotOptimize(rows);
  }
  state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_BaselineBareScan)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace fulcrum::bench

BENCHMARK_MAIN();
