// Experiment results at scale: 10M exposure and metric events on the embedded store.
// Measures the store's pushed-down aggregation (sufficient statistics per variant for two
// metrics, plus exposure counts) and, as the baseline in the same run, pandas+statsmodels
// doing the same aggregation and tests on the same SQLite file (bench/results_baseline.py).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "store/store.h"

namespace fulcrum {
namespace {

constexpr int kExposedUsers = 2'500'000;
constexpr int kMetricEvents = 7'500'000;  // 10M events in all

std::string dataset_path() {
  return (std::filesystem::temp_directory_path() / "fulcrum_results_bench.db").string();
}

// Deterministic data: variant by parity, converters ~10% (control) / 11% (variant) with
// revenue values; metric events land before and after exposure so CUPED has a pre-period.
void build_dataset(const std::string& path) {
  if (std::filesystem::exists(path)) return;
  auto store = std::move(open_store(path).value());
  std::uint64_t state = 42;
  auto next = [&state]() {
    state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  EventBatch batch;
  const UnixSeconds start = 1'700'000'000;
  for (int user = 0; user < kExposedUsers; ++user) {
    batch.exposures.push_back(ExposureEvent{"exp_bench", "user" + std::to_string(user),
                                            user % 2 ? "variant" : "control",
                                            start + static_cast<UnixSeconds>(next() % 2'000'000)});
    if (batch.exposures.size() == 200'000) {
      store->ingest(batch);
      batch.clear();
    }
  }
  store->ingest(batch);
  batch.clear();
  for (int i = 0; i < kMetricEvents; ++i) {
    const auto user = static_cast<int>(next() % kExposedUsers);
    const bool revenue = i % 2;
    batch.metric_events.push_back(
        MetricEvent{"user" + std::to_string(user), revenue ? "revenue_per_user" : "conversion_rate",
                    revenue ? static_cast<double>(next() % 5000) / 100.0 : 1.0,
                    start - 1'000'000 + static_cast<UnixSeconds>(next() % 4'000'000)});
    if (batch.metric_events.size() == 200'000) {
      store->ingest(batch);
      batch.clear();
    }
  }
  store->ingest(batch);
}

void BM_StoreResultsAggregation(benchmark::State& state) {
  build_dataset(dataset_path());
  auto store = std::move(open_store(dataset_path()).value());
  for (auto _ : state) {
    auto counts = store->exposure_counts("exp_bench");
    auto conversion = store->variant_metric_stats("exp_bench", "conversion_rate", 14 * 86400);
    auto revenue = store->variant_metric_stats("exp_bench", "revenue_per_user", 14 * 86400);
    if (!counts.is_ok() || !conversion.is_ok() || !revenue.is_ok() || conversion->size() != 2) {
      state.SkipWithError("aggregation failed");
      return;
    }
    benchmark::DoNotOptimize(revenue->front().sum);
  }
  state.counters["events"] = kExposedUsers + kMetricEvents;
}
BENCHMARK(BM_StoreResultsAggregation)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_PandasStatsmodelsBaseline(benchmark::State& state) {
  build_dataset(dataset_path());
  const std::string command = std::string("/usr/bin/python3 ") + FULCRUM_SOURCE_DIR +
                              "/bench/results_baseline.py " + dataset_path() + " > /dev/null";
  for (auto _ : state) {
    if (std::system(command.c_str()) != 0) {
      state.SkipWithError("pandas baseline failed (python3-pandas, python3-statsmodels?)");
      return;
    }
  }
}
BENCHMARK(BM_PandasStatsmodelsBaseline)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace fulcrum

BENCHMARK_MAIN();
