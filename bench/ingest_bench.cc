// SQLite ingestion throughput: Store::ingest (one transaction per batch, events packed into
// segments) against two baselines in the same run, all on real files with WAL and
// synchronous=FULL: the naive one INSERT per row in autocommit mode, and a row per event
// with a prepared statement and one transaction per 100k-event batch (the design before
// segments). Store::ingest gets the demo dataset's mix (feature usage, sessions, payments...).
// After the runs, prints the events/s ratio of each run to the baselines.
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

// Google Benchmark calls a benchmark function more than once (a trial run, then the timed
// one): each call starts from an empty store, so ids of an earlier call are not duplicates
// and every run ingests into a store of the same size.
std::filesystem::path fresh_store_path(const std::string& name) {
  const auto path = bench_directory() / name;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path.string() + suffix);
  }
  return path;
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
    EventBatch events = batch;
    events.users.clear();  // events only: user upserts are not events
    events.features.clear();
    if (!events.feature_usage.empty()) batches.push_back(std::move(events));
    return Status::ok();
  });
  if (!summary.is_ok()) std::abort();
  return batches;
}

void store_ingest(benchmark::State& state) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const std::vector<EventBatch> batches = demo_batches(batch_size);
  const auto path = fresh_store_path("store_" + std::to_string(batch_size) + ".db");
  auto store = open_store(path.string());
  if (!store.is_ok()) {
    state.SkipWithError(store.status().to_string().c_str());
    return;
  }
  std::size_t next = 0;
  std::int64_t events = 0;
  for (auto _ : state) {
    const EventBatch& batch = batches[next++ % batches.size()];
    const Status status = (*store)->ingest(batch).status();
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

// Event identity's cost: the same batches with an event_id on every event, as a client
// that retries safely sends them, unique per iteration (none is a duplicate) and set while
// the timer is paused. Two kinds of 32-hex-digit ids: random-looking (like UUIDv4, the worst
// case for the ids' b-tree: every insert lands on a random page) and time-ordered (like
// UUIDv7: a counter prefix, so new ids append at the b-tree's right edge).
std::uint64_t splitmix64(std::uint64_t z) {
  // Steele, Lea, Flood 2014: a bijection, so distinct inputs give distinct outputs.
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string event_id_number(std::uint64_t n, bool ordered) {
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx",
                static_cast<unsigned long long>(ordered ? n : splitmix64(n)),
                static_cast<unsigned long long>(splitmix64(~n)));
  return text;
}

void store_ingest_with_event_ids(benchmark::State& state, bool ordered) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const std::vector<EventBatch> batches = demo_batches(batch_size);
  const auto path = fresh_store_path("store_ids_" + std::string(ordered ? "ordered_" : "") +
                                     std::to_string(batch_size) + ".db");
  auto store = open_store(path.string());
  if (!store.is_ok()) {
    state.SkipWithError(store.status().to_string().c_str());
    return;
  }
  std::size_t next = 0;
  std::uint64_t next_id = 0;
  std::int64_t events = 0;
  EventBatch batch;
  auto identify = [&](auto& records) {
    for (auto& record : records) record.event_id = event_id_number(next_id++, ordered);
  };
  for (auto _ : state) {
    state.PauseTiming();
    batch = batches[next++ % batches.size()];
    identify(batch.feature_usage);
    identify(batch.sessions);
    identify(batch.subscription_changes);
    identify(batch.payments);
    identify(batch.paywall_hits);
    identify(batch.exposures);
    identify(batch.metric_events);
    state.ResumeTiming();
    auto report = (*store)->ingest(batch);
    if (!report.is_ok() || report->duplicates != 0) {
      state.SkipWithError(report.is_ok() ? "unexpected duplicates"
                                         : report.status().to_string().c_str());
      return;
    }
    events += static_cast<std::int64_t>(batch.size());
  }
  state.SetItemsProcessed(events);
  state.counters["batch"] = static_cast<double>(batch_size);
}
void BM_StoreIngestWithEventIds(benchmark::State& state) {
  store_ingest_with_event_ids(state, false);
}
BENCHMARK(BM_StoreIngestWithEventIds)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)
    ->UseRealTime();
void BM_StoreIngestWithOrderedEventIds(benchmark::State& state) {
  store_ingest_with_event_ids(state, true);
}
BENCHMARK(BM_StoreIngestWithOrderedEventIds)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)
    ->UseRealTime();
void BM_StoreIngestWithEventIdsCpuTime(benchmark::State& state) {
  store_ingest_with_event_ids(state, false);
}
BENCHMARK(BM_StoreIngestWithEventIdsCpuTime)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);

// Baselines write feature-usage events as one row each into schema 1's table (a row per
// event, indexed by time), which is how Fulcrum stored events before segments.
sqlite3* open_row_per_event_db(benchmark::State& state, const std::string& name) {
  const auto path = bench_directory() / name;
  sqlite3* db = nullptr;
  if (sqlite3_open(path.string().c_str(), &db) != SQLITE_OK) {
    state.SkipWithError("cannot open");
    return nullptr;
  }
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
               "CREATE TABLE IF NOT EXISTS feature_usage(user_id TEXT NOT NULL, "
               "feature TEXT NOT NULL, at INTEGER NOT NULL, count INTEGER NOT NULL); "
               "CREATE INDEX IF NOT EXISTS feature_usage_at ON feature_usage(at);",
               nullptr, nullptr, nullptr);
  return db;
}

bool insert_row(sqlite3_stmt* insert, const FeatureUsageEvent& event) {
  sqlite3_bind_text(insert, 1, event.user_id.data(), static_cast<int>(event.user_id.size()),
                    SQLITE_STATIC);
  sqlite3_bind_text(insert, 2, event.feature.data(), static_cast<int>(event.feature.size()),
                    SQLITE_STATIC);
  sqlite3_bind_int64(insert, 3, event.at);
  sqlite3_bind_int64(insert, 4, event.count);
  const bool done = sqlite3_step(insert) == SQLITE_DONE;
  sqlite3_reset(insert);
  return done;
}

constexpr const char* kInsertRow =
    "INSERT INTO feature_usage(user_id,feature,at,count) VALUES(?1,?2,?3,?4)";

// Naive: one INSERT per row in autocommit mode (a transaction and an fsync per event).
void BM_NaiveInsertPerRowAutocommit(benchmark::State& state) {
  sqlite3* db = open_row_per_event_db(state, "naive.db");
  if (!db) return;
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, kInsertRow, -1, &insert, nullptr);
  const EventBatch batch = demo_batches(10'000).front();
  std::size_t next = 0;
  std::int64_t events = 0;
  for (auto _ : state) {
    if (!insert_row(insert, batch.feature_usage[next++ % batch.feature_usage.size()])) {
      state.SkipWithError(sqlite3_errmsg(db));
      break;
    }
    ++events;
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_NaiveInsertPerRowAutocommit)->Iterations(2'000)->UseRealTime();

// The previous design: a row per event, prepared statement, one transaction per batch.
void BM_RowPerEventBatched(benchmark::State& state) {
  sqlite3* db = open_row_per_event_db(state, "rows.db");
  if (!db) return;
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, kInsertRow, -1, &insert, nullptr);
  std::vector<FeatureUsageEvent> usage;
  for (const EventBatch& batch : demo_batches(100'000)) {
    usage.insert(usage.end(), batch.feature_usage.begin(), batch.feature_usage.end());
  }
  std::size_t next = 0;
  std::int64_t events = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (int i = 0; i < 100'000; ++i) {
      if (!insert_row(insert, usage[next++ % usage.size()])) {
        state.SkipWithError(sqlite3_errmsg(db));
        break;
      }
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    events += 100'000;
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_RowPerEventBatched)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();


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
    double baseline = 0, rows_batched = 0;
    for (const auto& [name, rate] : rates_) {
      if (name.find("Naive") != std::string::npos) baseline = rate;
      if (name.find("RowPerEventBatched") != std::string::npos) rows_batched = rate;
    }
    if (baseline <= 0) return;
    std::printf("\nbaseline (one INSERT per row, autocommit): %.0f events/s\n", baseline);
    for (const auto& [name, rate] : rates_) {
      if (name.find("Naive") != std::string::npos) continue;
      std::printf("%s: %.0f events/s = %.0fx the baseline", name.c_str(), rate, rate / baseline);
      if (rows_batched > 0 && name.find("RowPerEvent") == std::string::npos) {
        std::printf(", %.1fx a row per event batched", rate / rows_batched);
      }
      std::printf("%s\n", name.find("CpuTime") != std::string::npos ? " (per CPU second)" : "");
    }
    // Event identity's cost: each run with event_ids against the same run without them.
    for (const auto& [name, rate] : rates_) {
      const std::size_t at = name.find("With");
      const std::size_t ids = name.find("EventIds");
      if (at == std::string::npos || ids == std::string::npos) continue;
      const std::string without = name.substr(0, at) + name.substr(ids + 8);
      auto plain = rates_.find(without);
      if (plain == rates_.end() || plain->second <= 0) continue;
      std::printf("event ids: %s %.0f events/s vs %s %.0f events/s = %.2fx\n", name.c_str(),
                  rate, without.c_str(), plain->second, rate / plain->second);
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
