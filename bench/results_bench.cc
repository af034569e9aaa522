// Experiment results at scale: 10M exposure and metric events on the embedded store.
// Measures the store's pushed-down aggregation (sufficient statistics per variant for two
// metrics, plus exposure counts) and, as the baseline in the same run, pandas+statsmodels
// doing the same aggregation and tests on the same events, exported once as CSV files
// (bench/results_baseline.py; pandas cannot read Fulcrum's packed event segments).
// The baseline's per-variant counts and means must equal the store's, or the run is marked
// as an error: a check of the aggregation at scale by an independent implementation.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "store/store.h"

namespace fulcrum {
namespace {

constexpr int kExposedUsers = 2'500'000;
constexpr int kMetricEvents = 7'500'000;  // 10M events in all

std::string dataset_path() {
  return (std::filesystem::temp_directory_path() / "fulcrum_results_bench_v2.db").string();
}

std::string csv_prefix() { return dataset_path() + "."; }

// The same events as CSV for the pandas baseline: <db>.exposures.csv, <db>.metric_events.csv.
void export_csv(Store& store) {
  if (std::filesystem::exists(csv_prefix() + "metric_events.csv")) return;
  std::FILE* exposures = std::fopen((csv_prefix() + "exposures.csv").c_str(), "w");
  std::fprintf(exposures, "user_id,variant,at\n");
  store.scan_exposures("exp_bench", [&](const ExposureEvent& e) {
    std::fprintf(exposures, "%s,%s,%lld\n", e.user_id.c_str(), e.variant.c_str(),
                 static_cast<long long>(e.at));
  });
  std::fclose(exposures);
  std::FILE* metrics = std::fopen((csv_prefix() + "metric_events.csv").c_str(), "w");
  std::fprintf(metrics, "user_id,metric,value,at\n");
  store.scan_metric_events({}, [&](const MetricEvent& e) {
    std::fprintf(metrics, "%s,%s,%.17g,%lld\n", e.user_id.c_str(), e.metric.c_str(), e.value,
                 static_cast<long long>(e.at));
  });
  std::fclose(metrics);
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

// What one results call (experiments/results.cc) asks of the store: exposure counts,
// multi-variant users, the sufficient statistics of two metrics (with the CUPED
// pre-period) and the daily cumulative conversion chart of the first.
bool aggregate(Store& store, benchmark::State& state) {
  auto counts = store.exposure_counts("exp_bench");
  auto multi = store.count_multi_variant_users("exp_bench");
  auto conversion = store.variant_metric_stats("exp_bench", "conversion_rate", 14 * 86400);
  auto revenue = store.variant_metric_stats("exp_bench", "revenue_per_user", 14 * 86400);
  auto daily = store.daily_cumulative("exp_bench", "conversion_rate");
  if (!counts.is_ok() || !multi.is_ok() || !conversion.is_ok() || !revenue.is_ok() ||
      !daily.is_ok() || daily->empty() ||
      conversion->size() != 2 || (*counts)[0].second + (*counts)[1].second != kExposedUsers) {
    state.SkipWithError("aggregation failed");
    return false;
  }
  benchmark::DoNotOptimize(revenue->front().sum);
  return true;
}

// Cold: a freshly opened store each time, so nothing is cached in the process (the file
// is in the OS page cache, as on a server that has been running).
void BM_StoreResultsCold(benchmark::State& state) {
  build_dataset(dataset_path());
  for (auto _ : state) {
    auto store = std::move(open_store(dataset_path()).value());
    if (!aggregate(*store, state)) return;
  }
  state.counters["events"] = kExposedUsers + kMetricEvents;
}
BENCHMARK(BM_StoreResultsCold)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// Warm: the same store again; the first-exposure table is reused while no exposure was added.
void BM_StoreResultsWarm(benchmark::State& state) {
  build_dataset(dataset_path());
  auto store = std::move(open_store(dataset_path()).value());
  aggregate(*store, state);
  for (auto _ : state) {
    if (!aggregate(*store, state)) return;
  }
  state.counters["events"] = kExposedUsers + kMetricEvents;
}
BENCHMARK(BM_StoreResultsWarm)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// What capping, quantiles, CUPED on capped values and CUPAC read instead of sums: every
// exposed user's value with the four CUPAC windows before exposure. Compare its time with
// Warm's two sufficient-statistics reads (one metric here): the per-user read costs the
// same scan plus 2.5M rows of output.
void BM_StorePerUserWindowsWarm(benchmark::State& state) {
  build_dataset(dataset_path());
  auto store = std::move(open_store(dataset_path()).value());
  const std::vector<UnixSeconds> edges = {0, 7 * 86400, 14 * 86400, 28 * 86400, 56 * 86400};
  for (auto _ : state) {
    auto read = store->exposed_user_metric("exp_bench", "revenue_per_user", edges);
    if (!read.is_ok() || read->size() != static_cast<std::size_t>(kExposedUsers)) {
      state.SkipWithError("per-user read failed");
      return;
    }
    benchmark::DoNotOptimize(read->post.data());
  }
  state.counters["users"] = kExposedUsers;
}
BENCHMARK(BM_StorePerUserWindowsWarm)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// The baseline's answers double as a check at scale: each metric's per-variant user count
// and mean must equal the store's sufficient statistics (to 1e-9 relative).
bool agrees_with_store(Store& store, const std::string& pandas_output, std::string& why) {
  std::istringstream lines(pandas_output);
  std::string metric;
  long long control_n = 0, variant_n = 0;
  double control_mean = 0, variant_mean = 0, p_value = 0;
  int metrics = 0;
  while (lines >> metric >> control_n >> variant_n >> control_mean >> variant_mean >> p_value) {
    ++metrics;
    auto stats = store.variant_metric_stats("exp_bench", metric, 14 * 86400);
    if (!stats.is_ok() || stats->size() != 2) {
      why = "store failed for " + metric;
      return false;
    }
    const auto& control = (*stats)[0];  // sorted by name: control, variant
    const auto& variant = (*stats)[1];
    auto close = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::abs(b); };
    if (control.users != control_n || variant.users != variant_n ||
        !close(control.sum / control.users, control_mean) ||
        !close(variant.sum / variant.users, variant_mean)) {
      why = "store and pandas disagree on " + metric;
      return false;
    }
  }
  if (metrics != 2) why = "pandas printed " + std::to_string(metrics) + " metrics, expected 2";
  return metrics == 2;
}

void BM_PandasStatsmodelsBaseline(benchmark::State& state) {
  build_dataset(dataset_path());
  auto store = std::move(open_store(dataset_path()).value());
  export_csv(*store);
  const std::string command = std::string("/usr/bin/python3 ") + FULCRUM_SOURCE_DIR +
                              "/bench/results_baseline.py " + csv_prefix();
  std::string output;
  for (auto _ : state) {
    output.clear();
    std::FILE* pipe = ::popen(command.c_str(), "r");
    char buffer[4096];
    std::size_t read = 0;
    while (pipe && (read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, read);
    if (!pipe || ::pclose(pipe) != 0) {
      state.SkipWithError("pandas baseline failed (python3-pandas, python3-statsmodels?)");
      return;
    }
  }
  std::string why;
  if (!agrees_with_store(*store, output, why)) state.SkipWithError(why.c_str());
}
BENCHMARK(BM_PandasStatsmodelsBaseline)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace fulcrum

BENCHMARK_MAIN();
