// PostgreSQL ingestion: Store::ingest (binary COPY into the tables, one transaction) against
// the same batch written with one INSERT per row (also one transaction), measured in the same
// run on the same server. Each benchmark works in a fresh schema of the database named by
// FULCRUM_TEST_PG_URL (start one with `eval "$(scripts/pg-test-server.sh start)"`).
// The SQLite backend's ingest of the same batch is reported for context.
//
//   build/bench/pg_ingest_bench
#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace fulcrum {
namespace {

// A realistic mix: per user one profile, a few sessions, feature usage and metric events.
EventBatch make_batch(int users, std::uint32_t seed) {
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> second(0, 30 * 86400);
  EventBatch batch;
  for (int u = 0; u < users; ++u) {
    const std::string id = "user-" + std::to_string(seed) + "-" + std::to_string(u);
    batch.users.push_back(User{id, Tier::kFree, 1'700'000'000, "DE", "5.2.1", {{"segment", "x"}}});
    for (int i = 0; i < 3; ++i) batch.sessions.push_back({id, 1'700'000'000 + second(random), 60});
    for (int i = 0; i < 8; ++i) {
      batch.feature_usage.push_back(
          {id, "feature_" + std::to_string(i), 1'700'000'000 + second(random), 1});
    }
    batch.exposures.push_back({"exp", id, u % 2 ? "control" : "treatment", 1'700'000'000});
    for (int i = 0; i < 4; ++i) {
      batch.metric_events.push_back({id, "revenue", 1.25 * i, 1'700'000'000 + second(random)});
    }
  }
  return batch;
}

class Schema {
 public:
  Schema() {
    const char* url = std::getenv("FULCRUM_TEST_PG_URL");
    if (url == nullptr) return;
    url_ = url;
    name_ = "fulcrum_bench_" + std::to_string(::getpid());
    admin_ = PQconnectdb(url_.c_str());
    exec("SET client_min_messages = warning");
    exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    exec("CREATE SCHEMA " + name_);
  }
  ~Schema() {
    if (admin_ != nullptr) exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    PQfinish(admin_);
  }
  bool ok() const { return admin_ != nullptr && PQstatus(admin_) == CONNECTION_OK; }
  std::string location() const {
    const char separator = url_.find('?') == std::string::npos ? '?' : '&';
    return url_ + separator + "options=-csearch_path%3D" + name_;
  }
  void truncate() { exec("TRUNCATE users, sessions, feature_usage, exposures, metric_events"); }

 private:
  void exec(const std::string& sql) {
    PQclear(PQexec(admin_, ("SET search_path TO " + name_ + "; " + sql).c_str()));
  }
  std::string url_, name_;
  PGconn* admin_ = nullptr;
};

template <typename Ingest>
void run_postgres(benchmark::State& state, Ingest ingest) {
  Schema schema;
  if (!schema.ok()) {
    state.SkipWithError("FULCRUM_TEST_PG_URL not set or server unreachable");
    return;
  }
  auto store = PostgresStore::open(schema.location());
  if (!store.is_ok()) {
    state.SkipWithError(store.status().to_string().c_str());
    return;
  }
  const EventBatch batch = make_batch(static_cast<int>(state.range(0)), 7);
  for (auto _ : state) {
    state.PauseTiming();
    schema.truncate();  // same starting point (empty tables and indexes) every iteration
    state.ResumeTiming();
    Status status = ingest(**store, batch);
    if (!status.is_ok()) {
      state.SkipWithError(status.to_string().c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch.size()));
  state.counters["events_per_s"] = benchmark::Counter(
      static_cast<double>(batch.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_PostgresIngestCopy(benchmark::State& state) {
  run_postgres(state, [](PostgresStore& store, const EventBatch& b) { return store.ingest(b).status(); });
}

void BM_PostgresIngestInsertPerRow(benchmark::State& state) {
  run_postgres(
      state, [](PostgresStore& store, const EventBatch& b) { return store.ingest_row_by_row(b); });
}

void BM_SqliteIngest(benchmark::State& state) {
  const auto directory = std::filesystem::temp_directory_path() /
                         ("fulcrum_pg_bench_sqlite_" + std::to_string(::getpid()));
  const EventBatch batch = make_batch(static_cast<int>(state.range(0)), 7);
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove_all(directory);
    std::filesystem::create_directories(directory);
    auto store = SqliteStore::open((directory / "bench.db").string());
    state.ResumeTiming();
    Status status = (*store)->ingest(batch).status();
    if (!status.is_ok()) state.SkipWithError(status.to_string().c_str());
  }
  std::filesystem::remove_all(directory);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch.size()));
  state.counters["events_per_s"] = benchmark::Counter(
      static_cast<double>(batch.size()), benchmark::Counter::kIsIterationInvariantRate);
}

// 2,000 users -> 34,000 records per batch.
BENCHMARK(BM_PostgresIngestCopy)
    ->Arg(2000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK(BM_PostgresIngestInsertPerRow)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SqliteIngest)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

}  // namespace
}  // namespace fulcrum

BENCHMARK_MAIN();
