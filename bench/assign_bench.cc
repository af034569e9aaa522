// Assignment throughput, one core. Goal: >= 10M assignments/s for the compiled Assigner.
// Baselines measured in the same run:
//  - BM_NaiveGrowthBookPort: a literal port of the SDK's run() path (builds seed + value
//    strings, formats the first hash with std::to_string, recomputes the bucket ranges with
//    vectors on every call) - what a straightforward implementation costs;
//  - BM_StdHashModulo: std::hash<std::string_view> modulo 10000, the cheapest (but not
//    SDK-compatible, not stable across standard libraries) way to bucket users.
// Users are pre-generated ids ("user_<n>") so id formatting is not measured.
#include <benchmark/benchmark.h>

#include <functional>
#include <string>
#include <vector>

#include "assign/assigner.h"
#include "assign/buckets.h"
#include "assign/hash.h"

namespace {

using namespace fulcrum::assign;

const std::vector<std::string>& user_ids() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> out;
    out.reserve(1 << 16);
    for (int i = 0; i < (1 << 16); ++i) out.push_back("user_" + std::to_string(1000000 + i * 7919));
    return out;
  }();
  return ids;
}

std::uint32_t naive_fnv(const std::string& s) {
  std::uint32_t h = 0x811c9dc5u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x01000193u;
  }
  return h;
}

int naive_run(const std::string& key, const std::string& user, int num_variations, double coverage,
              const std::vector<double>& weights) {
  const std::uint32_t first = naive_fnv(key + user);
  const double n = static_cast<double>(naive_fnv(std::to_string(first)) % 10000u) / 10000.0;
  const auto ranges = get_bucket_ranges(num_variations, coverage, weights);
  return choose_variation(n, ranges);
}

void BM_CompiledAssigner(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  Allocation alloc;
  for (int i = 0; i < n; ++i) alloc.groups.push_back("g" + std::to_string(i));
  alloc.weights = get_equal_weights(n);
  auto assigner = Assigner::create("exp_onboarding_checklist", alloc).value();
  const auto& ids = user_ids();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(assigner.assign(ids[i++ & 0xFFFF]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CompiledAssigner)->Arg(2)->Arg(3);

void BM_CompiledAssignerWithNamespace(benchmark::State& state) {
  Allocation alloc{{"control", "variant"}, {0.5, 0.5}, 0.8};
  auto assigner =
      Assigner::create("exp_onboarding_checklist", alloc, Namespace{"onboarding", 0, 0.6}).value();
  const auto& ids = user_ids();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(assigner.assign(ids[i++ & 0xFFFF]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CompiledAssignerWithNamespace);

void BM_NaiveGrowthBookPort(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  const std::vector<double> weights = get_equal_weights(n);
  const std::string key = "exp_onboarding_checklist";
  const auto& ids = user_ids();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(naive_run(key, ids[i++ & 0xFFFF], n, 1.0, weights));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NaiveGrowthBookPort)->Arg(2)->Arg(3);

void BM_StdHashModulo(benchmark::State& state) {
  const auto& ids = user_ids();
  std::hash<std::string_view> hasher;
  std::size_t i = 0;
  for (auto _ : state) {
    const double n = static_cast<double>(hasher(ids[i++ & 0xFFFF]) % 10000u) / 10000.0;
    benchmark::DoNotOptimize(n < 0.5 ? 0 : 1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StdHashModulo);

}  // namespace

BENCHMARK_MAIN();
