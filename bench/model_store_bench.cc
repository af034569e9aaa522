// Loading a stored model vs training it, on demo data of 2,000 and 20,000 users (90 days, a
// SQLite store in a temp directory, `fulcrum demo`'s generator): what a replica saves when
// it loads the model another one stored (core/stored_model.h) instead of training its own.
// Train = load the history from the store and train (the holder's Train, sharing off);
// Load = a new service's first fresh_model(), which reads the trained_model document,
// verifies its SHA-256 and decodes it (no training: checked). Both models: recommendations
// and upgrade timing. Ratios (train / load) and the stored sizes are printed after the
// table, from the same run.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>

#include "demo/demo_data.h"
#include "lifecycle/upgrade_timing.h"
#include "recommend/recommendations.h"
#include "store/model_document_store.h"

namespace fulcrum {
namespace {

constexpr UnixSeconds kEnd = 1'735'689'600;  // 2025-01-01

struct DemoStore {
  std::filesystem::path directory;
  std::unique_ptr<Store> store;
};

Store& demo_store(std::int64_t users) {
  static std::map<std::int64_t, DemoStore>* stores = new std::map<std::int64_t, DemoStore>;
  auto& slot = (*stores)[users];
  if (!slot.store) {
    slot.directory =
        std::filesystem::temp_directory_path() /
        ("fulcrum_model_bench_" + std::to_string(::getpid()) + "_" + std::to_string(users));
    std::filesystem::remove_all(slot.directory);
    std::filesystem::create_directories(slot.directory);
    slot.store = std::move(open_store((slot.directory / "store.db").string())).value();
    demo::DemoOptions options;
    options.users = users;
    options.days = 90;
    options.end = kEnd;
    auto summary = demo::generate_demo_data(
        options, [&](const EventBatch& batch) { return slot.store->ingest(batch).status(); });
    if (!summary.is_ok()) {
      std::cerr << summary.status().to_string() << "\n";
      std::abort();
    }
  }
  return *slot.store;
}

void cleanup() {
  std::error_code ignored;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ignored)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("fulcrum_model_bench_" + std::to_string(::getpid()) + "_", 0) == 0) {
      std::filesystem::remove_all(entry.path(), ignored);
    }
  }
}

template <typename Service>
void train(benchmark::State& state) {
  Store& store = demo_store(state.range(0));
  ManualClock clock(kEnd);
  for (auto _ : state) {
    Service service({}, StoredModelHolderOptions{}, /*share_through_store=*/false);
    auto model = service.fresh_model(store, clock);
    if (!model.is_ok()) state.SkipWithError(model.status().to_string().c_str());
    benchmark::DoNotOptimize(model);
  }
}

template <typename Service>
void load(benchmark::State& state, const char* name) {
  Store& store = demo_store(state.range(0));
  ManualClock clock(kEnd);
  {
    Service trainer({}, StoredModelHolderOptions{});
    if (!trainer.refresh(store, kEnd).is_ok()) state.SkipWithError("training failed");
  }
  for (auto _ : state) {
    Service service({}, StoredModelHolderOptions{});
    auto model = service.fresh_model(store, clock);
    if (!model.is_ok()) state.SkipWithError(model.status().to_string().c_str());
    if (service.trainings() != 0) state.SkipWithError("trained instead of loading");
    benchmark::DoNotOptimize(model);
  }
  auto doc = store.get_document(kTrainedModelKind, name);
  auto stored = parse_stored_model_body((*doc)->body);
  state.counters["payload_bytes"] = static_cast<double>(stored->payload.size());
  state.counters["document_bytes"] = static_cast<double>((*doc)->body.size());
  state.counters["bytes_per_user"] =
      static_cast<double>(stored->payload.size()) / static_cast<double>(state.range(0));
}

void BM_RecommendTrain(benchmark::State& state) { train<RecommendationService>(state); }
void BM_RecommendLoad(benchmark::State& state) {
  load<RecommendationService>(state, "recommendations");
}
void BM_UpgradeTimingTrain(benchmark::State& state) { train<UpgradeTimingService>(state); }
void BM_UpgradeTimingLoad(benchmark::State& state) {
  load<UpgradeTimingService>(state, "upgrade_timing");
}
BENCHMARK(BM_RecommendTrain)->Arg(2000)->Arg(20000)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_RecommendLoad)->Arg(2000)->Arg(20000)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_UpgradeTimingTrain)
    ->Arg(2000)
    ->Arg(20000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(BM_UpgradeTimingLoad)
    ->Arg(2000)
    ->Arg(20000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5);

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      const double per_second = benchmark::GetTimeUnitMultiplier(run.time_unit);
      results_[run.benchmark_name()] = {run.GetAdjustedRealTime() / per_second, run.counters};
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void print_ratios() const {
    for (const char* model : {"Recommend", "UpgradeTiming"}) {
      for (const char* users : {"2000", "20000"}) {
        auto train = results_.find(std::string("BM_") + model + "Train/" + users + "/iterations:3");
        auto load = results_.find(std::string("BM_") + model + "Load/" + users + "/iterations:5");
        if (train == results_.end() || load == results_.end()) continue;
        std::cout << model << " at " << users << " users: train " << train->second.seconds
                  << " s, load " << load->second.seconds << " s, train/load "
                  << train->second.seconds / load->second.seconds << "x; payload "
                  << load->second.counters.at("payload_bytes").value << " bytes ("
                  << load->second.counters.at("bytes_per_user").value << " a user), document "
                  << load->second.counters.at("document_bytes").value << " bytes\n";
      }
    }
  }

 private:
  struct Result {
    double seconds;
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
  fulcrum::cleanup();
  return 0;
}
