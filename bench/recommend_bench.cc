// Recommender speed on 50,000 users x 20 features of synthetic history (~90 days):
// training the RecommendationModel (two usage snapshots, EASE, per-type calibration) and
// serving one user (p50/p99 per call), each next to a most-popular ranker measured in the
// same run. Ratios are printed after the table (model time / baseline time).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <unordered_map>

#include "recommend/recommendation_model.h"
#include "recommend/synthetic.h"

namespace fulcrum {
namespace {

struct Data {
  EventBatch history;
  UnixSeconds now = 0;
};

const Data& data() {
  static const Data* d = [] {
    auto* out = new Data;
    SyntheticUsageOptions options;
    options.users = 50000;
    options.days = 90;
    out->history = make_synthetic_usage(options);
    out->now = options.start + options.days * kSecondsPerDay;
    return out;
  }();
  return *d;
}

// Most-popular "model": adopters per feature and each user's used-feature bitmask.
struct MostPopular {
  std::vector<std::pair<double, int>> ranked;  // (-adopters, feature)
  std::unordered_map<std::string, std::uint32_t> used;
  std::vector<std::string> names;

  static MostPopular train(const EventBatch& history, UnixSeconds now) {
    MostPopular m;
    std::unordered_map<std::string, int> feature_index;
    for (const auto& f : history.features) {
      feature_index.emplace(f.name, static_cast<int>(m.names.size()));
      m.names.push_back(f.name);
    }
    for (const auto& u : history.users) m.used.emplace(u.user_id, 0u);
    for (const auto& e : history.feature_usage) {
      if (e.at >= now) continue;
      auto f = feature_index.find(e.feature);
      auto u = m.used.find(e.user_id);
      if (f != feature_index.end() && u != m.used.end()) u->second |= 1u << f->second;
    }
    std::vector<double> adopters(m.names.size(), 0);
    for (const auto& [user, mask] : m.used) {
      for (std::size_t f = 0; f < m.names.size(); ++f) adopters[f] += (mask >> f) & 1u;
    }
    for (std::size_t f = 0; f < m.names.size(); ++f) {
      m.ranked.push_back({-adopters[f], static_cast<int>(f)});
    }
    std::sort(m.ranked.begin(), m.ranked.end());
    return m;
  }
  std::vector<std::string> recommend(const std::string& user_id, int k) const {
    std::vector<std::string> out;
    auto it = used.find(user_id);
    std::uint32_t mask = it == used.end() ? 0 : it->second;
    for (const auto& [count, f] : ranked) {
      if (static_cast<int>(out.size()) >= k) break;
      if (!((mask >> f) & 1u)) out.push_back(names[f]);
    }
    return out;
  }
};

void BM_TrainModel(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state) {
    auto model = RecommendationModel::train(UsageHistory::from_events(d.history), d.now);
    if (!model.is_ok()) state.SkipWithError(model.status().to_string().c_str());
    benchmark::DoNotOptimize(model);
  }
  state.counters["users"] = static_cast<double>(d.history.users.size());
  state.counters["usage_events"] = static_cast<double>(d.history.feature_usage.size());
}
BENCHMARK(BM_TrainModel)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_TrainMostPopular(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state) {
    auto model = MostPopular::train(d.history, d.now);
    benchmark::DoNotOptimize(model);
  }
}
BENCHMARK(BM_TrainMostPopular)->Unit(benchmark::kMillisecond)->Iterations(3);

// Per-call latency percentiles (microseconds) as counters.
template <typename Serve>
void serve_with_percentiles(benchmark::State& state, Serve serve) {
  const Data& d = data();
  std::vector<double> micros;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& user = d.history.users[(i++ * 7919) % d.history.users.size()].user_id;
    auto start = std::chrono::steady_clock::now();
    serve(user);
    auto end = std::chrono::steady_clock::now();
    micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<std::size_t>(q * (micros.size() - 1))]; };
  state.counters["p50_us"] = at(0.5);
  state.counters["p99_us"] = at(0.99);
}

void BM_ServeModel(benchmark::State& state) {
  static const RecommendationModel* model = [] {
    auto trained =
        RecommendationModel::train(UsageHistory::from_events(data().history), data().now);
    return new RecommendationModel(std::move(trained).value());
  }();
  serve_with_percentiles(state, [&](const std::string& user) {
    auto recs = model->recommend(user);
    benchmark::DoNotOptimize(recs);
  });
}
BENCHMARK(BM_ServeModel)->Unit(benchmark::kMicrosecond)->Iterations(20000);

void BM_ServeMostPopular(benchmark::State& state) {
  static const MostPopular* model = new MostPopular(MostPopular::train(data().history, data().now));
  serve_with_percentiles(state, [&](const std::string& user) {
    auto recs = model->recommend(user, 5);
    benchmark::DoNotOptimize(recs);
  });
}
BENCHMARK(BM_ServeMostPopular)->Unit(benchmark::kMicrosecond)->Iterations(20000);

// Keeps each run's time and counters so the ratios can be printed after the table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      // Adjusted times are in the run's unit; the multiplier is units per second.
      double per_second = benchmark::GetTimeUnitMultiplier(run.time_unit);
      double seconds = run.GetAdjustedRealTime() / per_second;
      double cpu_seconds = run.GetAdjustedCPUTime() / per_second;
      results_[run.benchmark_name()] = {seconds, cpu_seconds, run.counters};
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void print_ratios() const {
    auto find = [&](const std::string& name) -> const Result* {
      for (const auto& [key, value] : results_) {
        if (key.rfind(name, 0) == 0) return &value;
      }
      return nullptr;
    };
    auto* train = find("BM_TrainModel");
    auto* train_base = find("BM_TrainMostPopular");
    auto* serve = find("BM_ServeModel");
    auto* serve_base = find("BM_ServeMostPopular");
    if (train && train_base) {
      std::cout << "train: model " << train->seconds << " s wall (" << train->cpu_seconds
                << " s CPU), most-popular " << train_base->seconds << " s wall ("
                << train_base->cpu_seconds << " s CPU); ratio "
                << train->seconds / train_base->seconds << "x wall, "
                << train->cpu_seconds / train_base->cpu_seconds << "x CPU (goal < 5 s)\n";
    }
    if (serve && serve_base) {
      double p99 = serve->counters.at("p99_us").value;
      double p99_base = serve_base->counters.at("p99_us").value;
      std::cout << "serve one user p99: model " << p99 << " us, most-popular " << p99_base
                << " us, ratio " << p99 / p99_base << "x (goal < 1000 us)\n";
    }
  }

 private:
  struct Result {
    double seconds;
    double cpu_seconds;
    benchmark::UserCounters counters;
  };
  std::map<std::string, Result> results_;
};

}  // namespace
}  // namespace fulcrum

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  fulcrum::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}
