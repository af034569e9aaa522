// SQLite ingestion throughput: Store::ingest (one transaction per batch, prepared statements)
// against the naive baseline of one INSERT per row in autocommit mode (each row its own
// transaction), both on a real file with the store's pragmas (WAL, synchronous=FULL), in the
// same run. The events are the demo dataset's mix (feature usage, sessions, payments, ...).
// After the runs, prints the events/s ratio of each Store::ingest run to the baseline.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "demo/demo_data.h"
#include "store/store.h"

namespace fulcrum {
namespace {

std::filesystem::path bench_directory() {
  static const std::filesystem::path directory = [] {
    auto path = std::filesystem::temp_directory_path() /
                ("fulcrum_ingest_bench_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    return path;
  }();
  return directory;
}

// Demo events (without the user/feature records), regrouped into batches of `batch_size`.
std::vector<EventBatch> demo_batches(std::size_t batch_size) {
  demo::DemoOptions options;
  options.users = 20'000;
  options.days = 28;
  options.end = 1767225600;  // 2026-01-01
  options.batch_records = batch_size;
  std::vector<EventBatch> batches;
  auto summary = demo::generate_demo_data(options, [&](const EventBatch& batch) {
    if (batch.users.empty() && batch.features.empty()) batches.push_back(batch);
    return Status::ok();
  });
  if (!summary.is_ok()) std::abort();
  return batches;
}

void store_ingest(benchmark::State& state) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const std::vector<EventBatch> batches = demo_batches(batch_size);
  const auto path = bench_directory() / ("store_" + std::to_string(batch_size) + ".db");
  auto store = open_store(path.string());
  if (!store.is_ok()) {
    state.SkipWithError(store.status().to_string().c_str());
    return;
  }
  std::size_t next = 0;
  std::int64_t events = 0;
  for (auto _ : state) {
    const EventBatch& batch = batches[next++ % batches.size()];
    const Status status = (*store)->ingest(batch);
    if (!status.is_ok()) {
      state.SkipWithError(status.to_string().c_str());
      return;
    }
    events += static_cast<std::int64_t>(batch.size());
  }
  state.SetItemsProcessed(events);
  state.counters["batch"] = static_cast<double>(batch_size);
}
// Wall-clock rate: what a caller sees, fsync waits included (the figure compared with the
// baseline). On a shared, loaded machine it also includes waiting for a CPU.
void BM_StoreIngest(benchmark::State& state) { store_ingest(state); }
BENCHMARK(BM_StoreIngest)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)
    ->UseRealTime();
// The same work rated by this thread's CPU time: the bound when the CPU is not shared.
void BM_StoreIngestCpuTime(benchmark::State& state) { store_ingest(state); }
BENCHMARK(BM_StoreIngestCpuTime)->Arg(100'000)->Unit(benchmark::kMillisecond)->MinTime(3.0);

// Naive: the same schema and pragmas, one INSERT per feature-usage row, autocommit.
void BM_NaiveInsertPerRowAutocommit(benchmark::State& state) {
  const auto path = bench_directory() / "naive.db";
  { auto store = open_store(path.string()); }  // creates the schema
  sqlite3* db = nullptr;
  if (sqlite3_open(path.string().c_str(), &db) != SQLITE_OK) {
    state.SkipWithError("cannot open");
    return;
  }
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO feature_usage(user_id,feature,at,count) VALUES(?1,?2,?3,?4)",
                     -1, &insert, nullptr);
  const EventBatch batch = demo_batches(10'000).front();
  std::size_t next = 0;
  std::int64_t events = 0;
  for (auto _ : state) {
    const FeatureUsageEvent& event = batch.feature_usage[next++ % batch.feature_usage.size()];
    sqlite3_bind_text(insert, 1, event.user_id.data(), static_cast<int>(event.user_id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_text(insert, 2, event.feature.data(), static_cast<int>(event.feature.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(insert, 3, event.at);
    sqlite3_bind_int64(insert, 4, event.count);
    if (sqlite3_step(insert) != SQLITE_DONE) {
      state.SkipWithError(sqlite3_errmsg(db));
      break;
    }
    sqlite3_reset(insert);
    ++events;
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_NaiveInsertPerRowAutocommit)->Iterations(2'000)->UseRealTime();

// Console output plus a closing line with each run's speed relative to the baseline.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()] = it->second.value;
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    double baseline = 0;
    for (const auto& [name, rate] : rates_) {
      if (name.find("Naive") != std::string::npos) baseline = rate;
    }
    if (baseline <= 0) return;
    std::printf("\nbaseline (one INSERT per row, autocommit): %.0f events/s\n", baseline);
    for (const auto& [name, rate] : rates_) {
      if (name.find("Naive") != std::string::npos) continue;
      std::printf("%s: %.0f events/s = %.0fx the baseline%s\n", name.c_str(), rate, rate / baseline,
                  name.find("CpuTime") != std::string::npos ? " (per CPU second)" : "");
    }
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace
}  // namespace fulcrum

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  fulcrum::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  std::filesystem::remove_all(fulcrum::bench_directory());
  return 0;
}
