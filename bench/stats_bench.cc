// Cost of a full analyze() (2 groups x 5 metrics: binomial, continuous, CUPED continuous,
// ratio, binomial; Holm, Bayesian, SRM, power-based recommendation) against the bare Welch
// test it is built on, measured in the same run so the ratio is meaningful.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include "stats/analysis.h"
#include "stats/analysis_json.h"
#include "stats/hypothesis.h"

namespace {

using namespace fulcrum::stats;

MetricGroupInput group(std::int64_t n, double sum, double sum_squares) {
  MetricGroupInput g;
  g.n = n;
  g.sum = sum;
  g.sum_squares = sum_squares;
  return g;
}

MetricGroupInput ratio_group(std::int64_t n, double sum, double sum_squares, double den,
                             double den_squares, double cross) {
  MetricGroupInput g = group(n, sum, sum_squares);
  g.denominator_sum = den;
  g.denominator_sum_squares = den_squares;
  g.ratio_cross_sum = cross;
  return g;
}

AnalysisInput make_input() {
  AnalysisInput input;
  input.allocation = {{"control", 0.5}, {"variant", 0.5}};
  input.days_elapsed = 14;
  auto binomial = [](const char* name, double rate0, double rate1) {
    MetricInput m;
    m.name = name;
    m.groups["control"] = group(50000, 50000 * rate0, 50000 * rate0);
    m.groups["variant"] = group(50200, 50200 * rate1, 50200 * rate1);
    return m;
  };
  input.metrics.push_back(binomial("conversion_rate", 0.10, 0.104));
  MetricInput revenue;
  revenue.name = "revenue_per_user";
  revenue.type = MetricType::kContinuous;
  revenue.groups["control"] = group(50000, 1.25e6, 7.6e7);
  revenue.groups["variant"] = group(50200, 1.27e6, 7.7e7);
  input.metrics.push_back(revenue);
  MetricInput cuped = revenue;
  cuped.name = "revenue_cuped";
  cuped.groups["control"].pre_sum = 1.2e6;
  cuped.groups["control"].pre_sum_squares = 7.0e7;
  cuped.groups["control"].pre_cross_sum = 6.5e7;
  cuped.groups["variant"].pre_sum = 1.21e6;
  cuped.groups["variant"].pre_sum_squares = 7.05e7;
  cuped.groups["variant"].pre_cross_sum = 6.6e7;
  input.metrics.push_back(cuped);
  MetricInput ratio;
  ratio.name = "revenue_per_session";
  ratio.type = MetricType::kRatio;
  ratio.groups["control"] = ratio_group(50000, 1.25e6, 7.6e7, 150000, 600000, 4.5e6);
  ratio.groups["variant"] = ratio_group(50200, 1.27e6, 7.7e7, 151000, 605000, 4.6e6);
  input.metrics.push_back(ratio);
  input.metrics.push_back(binomial("retained_30d", 0.40, 0.405));
  return input;
}

void BM_WelchTestAlone(benchmark::State& state) {
  const SampleStats control{50000, 1.25e6, 7.6e7}, variant{50200, 1.27e6, 7.7e7};
  for (auto _ : state) {
    auto result = compare_means(control, variant, 0.05);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_WelchTestAlone);

void BM_Analyze2Groups5Metrics(benchmark::State& state) {
  const AnalysisInput input = make_input();
  for (auto _ : state) {
    auto output = analyze(input);
    if (!output.is_ok()) state.SkipWithError(output.status().message().c_str());
    benchmark::DoNotOptimize(output);
  }
}
BENCHMARK(BM_Analyze2Groups5Metrics);

void BM_Analyze2Groups5MetricsSequential(benchmark::State& state) {
  AnalysisInput input = make_input();
  input.sequential = true;
  for (auto _ : state) {
    auto output = analyze(input);
    benchmark::DoNotOptimize(output);
  }
}
BENCHMARK(BM_Analyze2Groups5MetricsSequential);

void BM_AnalyzeWithJsonRoundTrip(benchmark::State& state) {
  const AnalysisInput input = make_input();
  const auto first = analyze(input);
  const std::string text = analysis_output_to_json(*first).dump();
  for (auto _ : state) {
    auto output = analyze(input);
    benchmark::DoNotOptimize(analysis_output_to_json(*output).dump());
  }
  state.counters["output_bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_AnalyzeWithJsonRoundTrip);

}  // namespace

BENCHMARK_MAIN();
