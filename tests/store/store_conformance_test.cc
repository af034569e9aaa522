// One behavioural contract, every backend: these tests run unchanged against SQLite (a temp
// file) and PostgreSQL (a fresh schema in the server named by FULCRUM_TEST_PG_URL, see
// scripts/pg-test-server.sh). Without that variable the PostgreSQL cases fail in CI (CI=true)
// and are skipped locally.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "store/model_document_store.h"
#include "store/store.h"

namespace fulcrum {
namespace {

constexpr UnixSeconds kDay = 86400;

// Where a backend's store lives, and the one thing the tests need to do behind the Store's
// back: make inserts of a metric fail, to prove a failed batch leaves nothing behind.
class BackendEnvironment {
 public:
  virtual ~BackendEnvironment() = default;
  virtual std::string location() const = 0;
  virtual void reject_metric_inserts(const std::string& metric) = 0;
  // Runs SQL on the store's database behind its back (tampering, old schemas).
  virtual void execute(const std::string& sql) = 0;
  // Takes the store back to the schema before the usage rollups existed (their tables gone).
  virtual void drop_rollup_schema() = 0;
};

class SqliteEnvironment final : public BackendEnvironment {
 public:
  SqliteEnvironment() {
    directory_ = std::filesystem::temp_directory_path() /
                 ("fulcrum_conformance_" + std::to_string(::getpid()) + "_" +
                  std::to_string(std::random_device{}()));
    std::filesystem::create_directories(directory_);
  }
  ~SqliteEnvironment() override { std::filesystem::remove_all(directory_); }
  std::string location() const override { return (directory_ / "store.db").string(); }
  void reject_metric_inserts(const std::string& metric) override {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(location().c_str(), &db), SQLITE_OK);
    const std::string sql =
        "CREATE TRIGGER reject BEFORE INSERT ON event_segments WHEN "
        "NEW.key='" +
        metric + "' BEGIN SELECT RAISE(ABORT, 'rejected'); END";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  void execute(const std::string& sql) override {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(location().c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << sql << ": " << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }
  void drop_rollup_schema() override {
    execute(
        "DROP TABLE usage_user_days; DROP TABLE usage_feature_days; DROP TABLE "
        "usage_tier_changes; DROP TABLE feature_keys; UPDATE schema_version SET version = 3");
    // The later migrations run again, so their tables go too.
    execute(
        "DROP TABLE event_ids; DROP TABLE idempotency_keys; DROP TABLE document_changes; "
        "DROP TABLE job_leases; DROP TABLE job_runs; DROP TABLE webhook_deliveries; "
        "DROP TABLE user_token_revocations");
  }

 private:
  std::filesystem::path directory_;
};

// A private schema per test in the shared test database, dropped afterwards, so tests run
// in parallel processes without seeing each other's rows.
class PostgresEnvironment final : public BackendEnvironment {
 public:
  PostgresEnvironment(std::string url, std::string schema)
      : url_(std::move(url)), schema_(std::move(schema)) {
    admin_ = PQconnectdb(url_.c_str());
    if (PQstatus(admin_) != CONNECTION_OK) {
      ADD_FAILURE() << "cannot connect to FULCRUM_TEST_PG_URL: " << PQerrorMessage(admin_);
      return;
    }
    exec("SET client_min_messages = warning");
    exec("CREATE SCHEMA " + schema_);
    exec("SET search_path TO " + schema_);
  }
  ~PostgresEnvironment() override {
    if (PQstatus(admin_) == CONNECTION_OK) exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    PQfinish(admin_);
  }
  std::string location() const override {
    // libpq's `options` parameter sets search_path for every connection the store opens.
    const char separator = url_.find('?') == std::string::npos ? '?' : '&';
    return url_ + separator + "options=-csearch_path%3D" + schema_;
  }
  void reject_metric_inserts(const std::string& metric) override {
    exec(
        "CREATE FUNCTION reject_metric() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.metric = '" +
        metric +
        "' THEN RAISE EXCEPTION 'rejected'; END IF; "
        "RETURN NEW; END $$");
    exec(
        "CREATE TRIGGER reject BEFORE INSERT ON metric_events FOR EACH ROW "
        "EXECUTE FUNCTION reject_metric()");
  }
  void execute(const std::string& sql) override { exec(sql); }
  void drop_rollup_schema() override {
    exec(
        "DROP TABLE usage_user_days; DROP TABLE usage_feature_days; DROP TABLE "
        "usage_tier_changes; DROP TABLE feature_keys; DROP TABLE user_keys; "
        "UPDATE schema_version SET version = 1");
    // The later migrations run again, so their tables go too.
    exec(
        "DROP TABLE event_ids; DROP TABLE idempotency_keys; DROP TABLE document_changes; "
        "DROP TABLE job_leases; DROP TABLE job_runs; DROP TABLE webhook_deliveries; "
        "DROP TABLE user_token_revocations");
  }

 private:
  void exec(const std::string& sql) {
    PGresult* result = PQexec(admin_, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(result);
    PQclear(result);
  }

  std::string url_;
  std::string schema_;
  PGconn* admin_ = nullptr;
};

class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      environment_ = std::make_unique<SqliteEnvironment>();
    } else {
      const char* url = std::getenv("FULCRUM_TEST_PG_URL");
      if (url == nullptr || *url == '\0') {
        const char* ci = std::getenv("CI");
        if (ci != nullptr && std::string(ci) == "true") {
          FAIL() << "FULCRUM_TEST_PG_URL is not set: CI must run the PostgreSQL conformance "
                    "tests (scripts/test.sh starts a server with scripts/pg-test-server.sh)";
        }
        GTEST_SKIP() << "FULCRUM_TEST_PG_URL not set; start a server with "
                        "`eval \"$(scripts/pg-test-server.sh start)\"`";
      }
      const std::string schema = "fulcrum_test_" + std::to_string(::getpid()) + "_" +
                                 std::to_string(std::random_device{}() % 1000000);
      environment_ = std::make_unique<PostgresEnvironment>(url, schema);
      if (HasFailure()) return;
    }
    store_ = open();
  }
  void TearDown() override {
    store_.reset();
    environment_.reset();
  }

  std::unique_ptr<Store> open() {
    auto store = open_store(environment_->location());
    EXPECT_TRUE(store.is_ok()) << store.status().to_string();
    return store.is_ok() ? std::move(store).value() : nullptr;
  }

  std::unique_ptr<BackendEnvironment> environment_;
  std::unique_ptr<Store> store_;
};

#define REQUIRE_STORE() ASSERT_NE(store_, nullptr)

template <typename Event, typename Scan>
std::vector<Event> collect(Scan&& scan) {
  std::vector<Event> events;
  Status status = scan([&](const Event& event) { events.push_back(event); });
  EXPECT_TRUE(status.is_ok()) << status.to_string();
  return events;
}

TEST_P(StoreConformanceTest, MigratesOnceAndReopensAtTheSameVersion) {
  REQUIRE_STORE();
  auto version = store_->schema_version();
  ASSERT_TRUE(version.is_ok()) << version.status().to_string();
  EXPECT_GE(*version, 1);
  auto again = open();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(*again->schema_version(), *version);
}

TEST_P(StoreConformanceTest, EveryEventKindRoundTripsExactly) {
  REQUIRE_STORE();
  EventBatch batch;
  // Strings with separators, quotes, backslashes and non-ASCII text; awkward numbers.
  const std::string odd_id = "user\t\"one\"\\\n,é€";
  batch.feature_usage = {{odd_id, "budgets", 1000, 3}, {"u2", "tax_reports", -5, -1}};
  batch.sessions = {{odd_id, 1001, 2147483647}};
  batch.subscription_changes = {
      {odd_id, 1002, SubscriptionChangeKind::kDowngrade, Tier::kPremium, Tier::kPlus},
      {"u2", 1003, SubscriptionChangeKind::kCancel, Tier::kPlus, Tier::kFree}};
  batch.payments = {{odd_id, 1004, false, -999}, {"u2", 1005, true, INT64_C(900719925474099)}};
  batch.paywall_hits = {{odd_id, "wealth", 1006}};
  batch.exposures = {{"exp-1", odd_id, "treatment", 1007}};
  batch.metric_events = {{odd_id, "revenue", 0.1, 1008}, {"u2", "revenue", -1e-300, 1009}};
  ASSERT_TRUE(store_->ingest(batch).is_ok());

  auto usage =
      collect<FeatureUsageEvent>([&](auto visit) { return store_->scan_feature_usage({}, visit); });
  std::sort(usage.begin(), usage.end(), [](auto& a, auto& b) { return a.at < b.at; });
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(std::tie(usage[0].user_id, usage[0].feature, usage[0].at, usage[0].count),
            std::make_tuple(std::string("u2"), std::string("tax_reports"), -5, -1));
  EXPECT_EQ(usage[1].user_id, odd_id);
  EXPECT_EQ(usage[1].count, 3);

  auto sessions = collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); });
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].duration_seconds, 2147483647);

  auto changes = collect<SubscriptionChangeEvent>(
      [&](auto v) { return store_->scan_subscription_changes({}, v); });
  std::sort(changes.begin(), changes.end(), [](auto& a, auto& b) { return a.at < b.at; });
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, SubscriptionChangeKind::kDowngrade);
  EXPECT_EQ(changes[0].from_tier, Tier::kPremium);
  EXPECT_EQ(changes[0].to_tier, Tier::kPlus);
  EXPECT_EQ(changes[1].kind, SubscriptionChangeKind::kCancel);

  auto payments = collect<PaymentEvent>([&](auto v) { return store_->scan_payments({}, v); });
  std::sort(payments.begin(), payments.end(), [](auto& a, auto& b) { return a.at < b.at; });
  ASSERT_EQ(payments.size(), 2u);
  EXPECT_FALSE(payments[0].succeeded);
  EXPECT_EQ(payments[0].amount_minor, -999);
  EXPECT_TRUE(payments[1].succeeded);
  EXPECT_EQ(payments[1].amount_minor, INT64_C(900719925474099));

  auto hits = collect<PaywallHitEvent>([&](auto v) { return store_->scan_paywall_hits({}, v); });
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].feature, "wealth");
  EXPECT_EQ(hits[0].user_id, odd_id);

  auto exposures =
      collect<ExposureEvent>([&](auto v) { return store_->scan_exposures("exp-1", v); });
  ASSERT_EQ(exposures.size(), 1u);
  EXPECT_EQ(exposures[0].variant, "treatment");
  EXPECT_TRUE(
      collect<ExposureEvent>([&](auto v) { return store_->scan_exposures("nope", v); }).empty());

  auto metrics = collect<MetricEvent>([&](auto v) { return store_->scan_metric_events({}, v); });
  std::sort(metrics.begin(), metrics.end(), [](auto& a, auto& b) { return a.at < b.at; });
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0].value, 0.1);  // bit-exact, not just close
  EXPECT_EQ(metrics[1].value, -1e-300);
  EXPECT_EQ(*store_->latest_event_time(), 1009);
  EXPECT_EQ(*store_->earliest_event_time(), -5);  // the feature use at -5
}

TEST_P(StoreConformanceTest, ScansReturnExactlyTheHalfOpenRange) {
  REQUIRE_STORE();
  EventBatch batch;
  for (UnixSeconds at : {99, 100, 199, 200, 250, 299, 300, 301}) {
    batch.feature_usage.push_back({"u", "f", at, 1});
    batch.sessions.push_back({"u", at, 1});
    batch.subscription_changes.push_back(
        {"u", at, SubscriptionChangeKind::kUpgrade, Tier::kFree, Tier::kPlus});
    batch.payments.push_back({"u", at, true, 1});
    batch.paywall_hits.push_back({"u", "f", at});
    batch.metric_events.push_back({"u", "m", 1, at});
  }
  ASSERT_TRUE(store_->ingest(batch).is_ok());
  const TimeRange range{200, 300};
  const std::vector<UnixSeconds> expected = {200, 250, 299};
  auto times = [](auto events) {
    std::vector<UnixSeconds> at;
    for (const auto& event : events) at.push_back(event.at);
    std::sort(at.begin(), at.end());
    return at;
  };
  EXPECT_EQ(times(collect<FeatureUsageEvent>(
                [&](auto v) { return store_->scan_feature_usage(range, v); })),
            expected);
  EXPECT_EQ(times(collect<SessionEvent>([&](auto v) { return store_->scan_sessions(range, v); })),
            expected);
  EXPECT_EQ(times(collect<SubscriptionChangeEvent>(
                [&](auto v) { return store_->scan_subscription_changes(range, v); })),
            expected);
  EXPECT_EQ(times(collect<PaymentEvent>([&](auto v) { return store_->scan_payments(range, v); })),
            expected);
  EXPECT_EQ(
      times(collect<PaywallHitEvent>([&](auto v) { return store_->scan_paywall_hits(range, v); })),
      expected);
  EXPECT_EQ(
      times(collect<MetricEvent>([&](auto v) { return store_->scan_metric_events(range, v); })),
      expected);
  // Open-ended sides.
  EXPECT_EQ(collect<SessionEvent>([&](auto v) {
              return store_->scan_sessions({0, 200}, v);
            }).size(),
            3u);
  EXPECT_EQ(collect<SessionEvent>([&](auto v) { return store_->scan_sessions({300}, v); }).size(),
            2u);
  EXPECT_EQ(collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); }).size(), 8u);
  EXPECT_TRUE(collect<SessionEvent>([&](auto v) {
                return store_->scan_sessions({400, 500}, v);
              }).empty());
}

// Holdout impact reads: every stored user once with its metric sums per half-open period;
// events outside the edges, of other metrics and of users not stored are left out.
TEST_P(StoreConformanceTest, UserPeriodSumsCoverEveryStoredUserPerHalfOpenPeriod) {
  REQUIRE_STORE();
  EventBatch batch;
  for (const char* id : {"a", "b", "c"}) {
    User user;
    user.user_id = id;
    user.signup_at = 50;
    batch.users.push_back(user);
  }
  batch.users[1].attributes = {{"segment", "student"}};
  batch.metric_events = {{"a", "revenue", 2.5, 100}, {"a", "revenue", 1.25, 199},
                         {"a", "revenue", 4.0, 200}, {"a", "revenue", 8.0, 300},
                         {"b", "revenue", 0.5, 250}, {"b", "conversion", 1.0, 250},
                         {"a", "revenue", 16.0, 99}, {"ghost", "revenue", 3.0, 150}};
  ASSERT_TRUE(store_->ingest(batch).is_ok());
  std::map<std::string, std::vector<double>> seen;
  Status scanned = store_->scan_user_period_sums(
      "revenue", {100, 200, 300}, [&](const User& user, const double* sums) {
        EXPECT_FALSE(seen.count(user.user_id)) << user.user_id;
        seen[user.user_id] = {sums[0], sums[1]};
        if (user.user_id == "b") {
          EXPECT_EQ(user.attributes.at("segment"), "student");
        }
      });
  ASSERT_TRUE(scanned.is_ok()) << scanned.to_string();
  const std::map<std::string, std::vector<double>> expected = {
      {"a", {3.75, 4.0}}, {"b", {0.0, 0.5}}, {"c", {0.0, 0.0}}};
  EXPECT_EQ(seen, expected);
  Status bad =
      store_->scan_user_period_sums("revenue", {200, 100}, [](const User&, const double*) {});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.field(), "edges");
}

TEST_P(StoreConformanceTest, LargeScansVisitEveryRowOnce) {
  REQUIRE_STORE();
  // More rows than one streaming batch of any backend, so the scan must page.
  constexpr int kRows = 12'345;
  EventBatch batch;
  for (int i = 0; i < kRows; ++i) batch.sessions.push_back({"u" + std::to_string(i % 97), i, i});
  ASSERT_TRUE(store_->ingest(batch).is_ok());
  std::int64_t rows = 0, duration_sum = 0;
  ASSERT_TRUE(store_
                  ->scan_sessions({},
                                  [&](const SessionEvent& e) {
                                    ++rows;
                                    duration_sum += e.duration_seconds;
                                  })
                  .is_ok());
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(duration_sum, std::int64_t{kRows} * (kRows - 1) / 2);
}

TEST_P(StoreConformanceTest, FailedBatchStoresNothingAndTheStoreStaysUsable) {
  REQUIRE_STORE();
  environment_->reject_metric_inserts("boom");
  EventBatch batch;
  batch.users.push_back(User{"u1", Tier::kFree, 1, "", "", {}});
  batch.features.push_back(Feature{"budgets", Tier::kFree, 1, 2, "planning"});
  batch.sessions.push_back(SessionEvent{"u1", 10, 5});
  batch.exposures.push_back(ExposureEvent{"e", "u1", "control", 10});
  batch.metric_events.push_back(MetricEvent{"u1", "ok", 1, 10});
  batch.metric_events.push_back(MetricEvent{"u1", "boom", 1, 11});
  EXPECT_FALSE(store_->ingest(batch).is_ok());
  EXPECT_EQ(*store_->count_users(), 0);
  EXPECT_TRUE(store_->list_features()->empty());
  EXPECT_TRUE(collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); }).empty());
  EXPECT_TRUE(store_->exposure_counts("e")->empty());
  EXPECT_TRUE(
      collect<MetricEvent>([&](auto v) { return store_->scan_metric_events({}, v); }).empty());
  // Again, so a pooled connection that saw the failure is reused.
  EXPECT_FALSE(store_->ingest(batch).is_ok());
  batch.metric_events.pop_back();
  ASSERT_TRUE(store_->ingest(batch).is_ok());
  EXPECT_EQ(*store_->count_users(), 1);
  EXPECT_EQ(store_->list_features()->size(), 1u);
  EXPECT_EQ(collect<MetricEvent>([&](auto v) { return store_->scan_metric_events({}, v); }).size(),
            1u);
}

TEST_P(StoreConformanceTest, ReadersSeeWholeBatchesOrNothing) {
  REQUIRE_STORE();
  constexpr int kBatches = 15, kPerBatch = 40;
  std::atomic<bool> done = false;
  std::thread writer([&] {
    for (int b = 0; b < kBatches; ++b) {
      EventBatch batch;
      for (int i = 0; i < kPerBatch; ++i) {
        const std::string id = "u" + std::to_string(b * kPerBatch + i);
        batch.users.push_back(User{id, Tier::kFree, 1, "", "", {}});
        batch.sessions.push_back(SessionEvent{id, b, 1});
      }
      EXPECT_TRUE(store_->ingest(batch).is_ok());
    }
    done = true;
  });
  int observations = 0;
  while (!done || observations == 0) {
    auto users = store_->count_users();
    ASSERT_TRUE(users.is_ok());
    EXPECT_EQ(*users % kPerBatch, 0) << "saw part of a batch";
    std::int64_t sessions = 0;
    ASSERT_TRUE(store_->scan_sessions({}, [&](const SessionEvent&) { ++sessions; }).is_ok());
    EXPECT_EQ(sessions % kPerBatch, 0) << "saw part of a batch";
    ++observations;
  }
  writer.join();
  EXPECT_EQ(*store_->count_users(), kBatches * kPerBatch);
}

TEST_P(StoreConformanceTest, UsersAndFeaturesAreUpsertedLastWriteWins) {
  REQUIRE_STORE();
  EventBatch first;
  first.users = {User{"u1", Tier::kFree, 100, "US", "5.0.0", {{"segment", "student"}}},
                 User{"u2", Tier::kPlus, 200, "", "", {}},
                 User{"u1", Tier::kPlus, 100, "DE", "5.1.0", {{"segment", "family"}}}};
  first.features = {Feature{"zeta", Tier::kPremium, 10, 20, "savings"},
                    Feature{"Alpha", Tier::kFree, 1, 2, "payments"},
                    Feature{"budgets", Tier::kPlus, 3, 4, "planning"}};
  ASSERT_TRUE(store_->ingest(first).is_ok());
  auto u1 = store_->get_user("u1");
  ASSERT_TRUE(u1.is_ok() && u1->has_value());
  EXPECT_EQ((*u1)->tier, Tier::kPlus);
  EXPECT_EQ((*u1)->country, "DE");
  EXPECT_EQ((*u1)->app_version, "5.1.0");
  EXPECT_EQ((*u1)->attributes, (std::map<std::string, std::string>{{"segment", "family"}}));
  EXPECT_EQ(*store_->count_users(), 2);
  EXPECT_FALSE(store_->get_user("nobody")->has_value());

  EventBatch second;
  second.users = {User{"u2", Tier::kPremium, 200, "FR", "6.0.0", {{"a", "1"}, {"b", "x y"}}}};
  second.features = {Feature{"budgets", Tier::kFree, 30, 40, "budgeting"}};
  ASSERT_TRUE(store_->ingest(second).is_ok());
  std::map<std::string, User> users;
  ASSERT_TRUE(store_->scan_users([&](const User& u) { users[u.user_id] = u; }).is_ok());
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users["u2"].tier, Tier::kPremium);
  EXPECT_EQ(users["u2"].signup_at, 200);
  EXPECT_EQ(users["u2"].attributes.at("b"), "x y");
  EXPECT_EQ(users["u1"].country, "DE");

  auto features = store_->list_features();
  ASSERT_TRUE(features.is_ok());
  ASSERT_EQ(features->size(), 3u);
  // Byte order: upper case sorts before lower case.
  EXPECT_EQ((*features)[0].name, "Alpha");
  EXPECT_EQ((*features)[1].name, "budgets");
  EXPECT_EQ((*features)[2].name, "zeta");
  EXPECT_EQ((*features)[1].required_tier, Tier::kFree);
  EXPECT_EQ((*features)[1].monthly_maintenance_cost_minor, 30);
  EXPECT_EQ((*features)[1].monthly_revenue_value_minor, 40);
  EXPECT_EQ((*features)[1].category, "budgeting");
}

// Trained models are documents (store/model_document_store.h). A recommendation model of
// 50,000 demo users x 20 features serialises to about 18 MB (bench/model_store_bench.cc
// measures it at 2,000 and 20,000 users: ~350 bytes a user), 24 MB in base64; neither
// backend caps a document below that (SQLite's default SQLITE_MAX_LENGTH is 1e9 bytes,
// PostgreSQL's TEXT 1 GB), and this stores 32 MiB of binary payload, NUL bytes included,
// twice (an overwrite), through the same adapter the model holders use.
TEST_P(StoreConformanceTest, ATrainedModelLargerThanA50kUserOneRoundTripsThroughDocuments) {
  REQUIRE_STORE();
  std::mt19937_64 random(17);
  std::string payload(32u << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); i += 8) {
    const std::uint64_t word = random();
    std::memcpy(payload.data() + i, &word, 8);
  }
  payload[5] = '\0';
  DocumentModelStore models(*store_, "replica-a");
  EXPECT_FALSE(models.load("recommendations")->has_value());
  StoredModel model = make_stored_model("recommendations", 1, "opts", 1000, payload);
  auto first = models.save(model, 1000);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(*first, 1);
  payload[payload.size() - 1] ^= 0x5a;
  model = make_stored_model("recommendations", 1, "opts", 2000, payload);
  auto second = models.save(model, 2000);
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  EXPECT_EQ(*second, 2);
  // Another handle on the same store (another replica) reads it back byte for byte.
  auto other = open();
  ASSERT_NE(other, nullptr);
  DocumentModelStore replica(*other, "replica-b");
  auto loaded = replica.load("recommendations");
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->store_version, 2);
  EXPECT_EQ((*loaded)->trained_at, 2000);
  EXPECT_EQ((*loaded)->content_sha256, model.content_sha256);
  EXPECT_TRUE((*loaded)->payload == payload);
  auto listed = other->get_document(kTrainedModelKind, "recommendations");
  ASSERT_TRUE(listed.is_ok() && listed->has_value());
  EXPECT_EQ((*listed)->kind, "trained_model");
  // The 32 MiB model is not copied into the change feed.
  auto changes = store_->pending_document_changes(100);
  ASSERT_TRUE(changes.is_ok());
  for (const DocumentChange& change : *changes) EXPECT_NE(change.kind, "trained_model");

  // The training lease: one holder at a time, free again once released or expired.
  EXPECT_TRUE(*models.acquire_training_lease("recommendations", 100, 200));
  EXPECT_TRUE(*models.acquire_training_lease("recommendations", 150, 250));  // its own
  EXPECT_FALSE(*replica.acquire_training_lease("recommendations", 150, 300));
  EXPECT_TRUE(models.release_training_lease("recommendations").is_ok());
  EXPECT_TRUE(*replica.acquire_training_lease("recommendations", 160, 300));
  EXPECT_FALSE(*models.acquire_training_lease("recommendations", 299, 400));
  EXPECT_TRUE(*models.acquire_training_lease("recommendations", 300, 400));  // expired
  EXPECT_FALSE(replica.release_training_lease("recommendations").is_ok());   // taken over
}

TEST_P(StoreConformanceTest, AStoredModelEnvelopeThatIsNotOneIsRefused) {
  REQUIRE_STORE();
  for (const char* body : {"not json", "[]", R"({"name":"recommendations"})",
                           R"({"name":"r","format_version":1,"options_fingerprint":"o",)"
                           R"("trained_at":1,"content_sha256":"x","payload_bytes":3,)"
                           R"("payload_base64":"!!!!"})"}) {
    SCOPED_TRACE(body);
    const Status erased = store_->erase_document(kTrainedModelKind, "recommendations");
    ASSERT_TRUE(erased.is_ok() || erased.code() == StatusCode::kNotFound) << erased.to_string();
    ASSERT_TRUE(store_->put_document({"recommendations", kTrainedModelKind, "stored", body, 1, 1,
                                      0})
                    .is_ok());
    DocumentModelStore models(*store_, "replica-a");
    auto loaded = models.load("recommendations");
    EXPECT_FALSE(loaded.is_ok());
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  }
}

// Bulk documents (trained models) stay out of the change feed but keep their versions.
TEST_P(StoreConformanceTest, ADocumentKeptOutOfTheChangeFeedIsStillVersioned) {
  REQUIRE_STORE();
  Document bulk{"recommendations", "trained_model", "stored", std::string(100'000, 'm'), 1, 1, 0};
  bulk.to_change_feed = false;
  EXPECT_EQ(*store_->put_document(bulk), 1);
  EXPECT_EQ(store_->put_document(bulk).status().code(), StatusCode::kAlreadyExists);
  bulk.version = 1;
  bulk.body = std::string(100'000, 'n');
  EXPECT_EQ(*store_->put_document(bulk), 2);
  EXPECT_EQ(store_->put_document(bulk).status().code(), StatusCode::kFailedPrecondition);
  Document ghost = bulk;
  ghost.id = "ghost";
  ghost.version = 4;
  EXPECT_EQ(store_->put_document(ghost).status().code(), StatusCode::kFailedPrecondition);
  auto stored = store_->get_document("trained_model", "recommendations");
  ASSERT_TRUE(stored.is_ok() && stored->has_value());
  EXPECT_EQ((*stored)->version, 2);
  EXPECT_EQ((*stored)->body, std::string(100'000, 'n'));
  // Its head: the same record without the body.
  auto head = store_->get_document_head("trained_model", "recommendations");
  ASSERT_TRUE(head.is_ok() && head->has_value()) << head.status().to_string();
  EXPECT_EQ((*head)->version, 2);
  EXPECT_EQ((*head)->status, "stored");
  EXPECT_EQ((*head)->updated_at, (*stored)->updated_at);
  EXPECT_TRUE((*head)->body.empty());
  auto no_head = store_->get_document_head("trained_model", "ghost");
  ASSERT_TRUE(no_head.is_ok());
  EXPECT_FALSE(no_head->has_value());
  auto changes = store_->pending_document_changes(100);
  ASSERT_TRUE(changes.is_ok());
  EXPECT_TRUE(changes->empty()) << changes->size() << " change rows for a bulk document";
  // An ordinary document still goes to the feed.
  ASSERT_TRUE(store_->put_document({"t9", "experiment", "draft", "{}", 1, 1, 0}).is_ok());
  changes = store_->pending_document_changes(100);
  ASSERT_TRUE(changes.is_ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].kind, "experiment");
}

TEST_P(StoreConformanceTest, DocumentsUseOptimisticVersions) {
  REQUIRE_STORE();
  Document doc{"t1", "experiment", "draft", R"({"a":1})", 10, 10, 0};
  EXPECT_EQ(*store_->put_document(doc), 1);
  EXPECT_EQ(store_->put_document(doc).status().code(), StatusCode::kAlreadyExists);
  doc.version = 1;
  doc.status = "running";
  doc.body = R"({"a":2})";
  doc.updated_at = 20;
  EXPECT_EQ(*store_->put_document(doc), 2);
  EXPECT_EQ(store_->put_document(doc).status().code(), StatusCode::kFailedPrecondition);
  auto stored = store_->get_document("experiment", "t1");
  ASSERT_TRUE(stored.is_ok() && stored->has_value());
  EXPECT_EQ((*stored)->status, "running");
  EXPECT_EQ((*stored)->body, R"({"a":2})");
  EXPECT_EQ((*stored)->created_at, 10);
  EXPECT_EQ((*stored)->updated_at, 20);
  EXPECT_EQ((*stored)->version, 2);
  // A version for a document that does not exist is a stale read too.
  Document ghost{"g", "experiment", "draft", "{}", 1, 1, 3};
  EXPECT_EQ(store_->put_document(ghost).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(store_->get_document("experiment", "g")->has_value());
  EXPECT_FALSE(store_->get_document("campaign", "t1")->has_value());

  // Same id in another kind is another document; listing is by created_at then id.
  ASSERT_TRUE(store_->put_document({"t1", "campaign", "draft", "{}", 5, 5, 0}).is_ok());
  ASSERT_TRUE(store_->put_document({"b", "experiment", "draft", "{}", 10, 10, 0}).is_ok());
  ASSERT_TRUE(store_->put_document({"z", "experiment", "draft", "{}", 1, 1, 0}).is_ok());
  auto listed = store_->list_documents("experiment");
  ASSERT_TRUE(listed.is_ok());
  std::vector<std::string> ids;
  for (const auto& d : *listed) ids.push_back(d.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"z", "b", "t1"}));
  EXPECT_EQ(store_->list_documents("campaign")->size(), 1u);
}

TEST_P(StoreConformanceTest, ConcurrentWritersOfOneVersionHaveOneWinner) {
  REQUIRE_STORE();
  ASSERT_TRUE(store_->put_document({"d", "experiment", "draft", "{}", 1, 1, 0}).is_ok());
  // Two store instances on one database behave like two server replicas.
  auto replica = open();
  ASSERT_NE(replica, nullptr);
  constexpr int kWriters = 6;
  std::atomic<int> wins = 0, conflicts = 0;
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      Store& store = i % 2 == 0 ? *store_ : *replica;
      auto result =
          store.put_document({"d", "experiment", "writer" + std::to_string(i), "{}", 1, 2, 1});
      if (result.is_ok()) {
        ++wins;
      } else if (result.status().code() == StatusCode::kFailedPrecondition) {
        ++conflicts;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(wins, 1);
  EXPECT_EQ(conflicts, kWriters - 1);
  EXPECT_EQ((*store_->get_document("experiment", "d"))->version, 2);
}

TEST_P(StoreConformanceTest, ApiKeysAreFoundByHashListedAndRevokedOnce) {
  REQUIRE_STORE();
  ASSERT_TRUE(store_->put_api_key({"k2", "hash2", "analyst", "dash", 7, std::nullopt}).is_ok());
  ASSERT_TRUE(store_->put_api_key({"k1", "hash1", "admin", "ops", 5, std::nullopt}).is_ok());
  ASSERT_TRUE(store_->put_api_key({"k0", "hash0", "service", "old", 7, std::int64_t{6}}).is_ok());
  EXPECT_FALSE(store_->put_api_key({"k3", "hash1", "admin", "same hash", 8, std::nullopt}).is_ok());
  EXPECT_FALSE(store_->put_api_key({"k1", "hash9", "admin", "same id", 8, std::nullopt}).is_ok());

  auto found = store_->find_api_key_by_hash("hash2");
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_EQ((*found)->key_id, "k2");
  EXPECT_EQ((*found)->role, "analyst");
  EXPECT_EQ((*found)->label, "dash");
  EXPECT_EQ((*found)->created_at, 7);
  EXPECT_FALSE((*found)->revoked_at.has_value());
  EXPECT_FALSE(store_->find_api_key_by_hash("nope")->has_value());

  auto keys = store_->list_api_keys();
  ASSERT_TRUE(keys.is_ok());
  std::vector<std::string> ids;
  for (const auto& k : *keys) ids.push_back(k.key_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"k1", "k0", "k2"}));  // created_at, then key_id
  EXPECT_EQ(*(*keys)[1].revoked_at, 6);

  ASSERT_TRUE(store_->revoke_api_key("k2", 9).is_ok());
  EXPECT_EQ(*(*store_->find_api_key_by_hash("hash2"))->revoked_at, 9);
  EXPECT_EQ(store_->revoke_api_key("k2", 10).code(), StatusCode::kNotFound);
  EXPECT_EQ(*(*store_->find_api_key_by_hash("hash2"))->revoked_at, 9);
  EXPECT_EQ(store_->revoke_api_key("k0", 10).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->revoke_api_key("missing", 10).code(), StatusCode::kNotFound);
}

std::string chain_hash(const AuditEntry& e) {
  return std::to_string(std::hash<std::string>{}(
      e.previous_hash + "|" + std::to_string(e.sequence) + "|" + e.actor + "|" + e.action));
}

void expect_valid_chain(Store& store, std::size_t expected_entries) {
  std::vector<AuditEntry> entries;
  ASSERT_TRUE(store.scan_audit([&](const AuditEntry& e) { entries.push_back(e); }).is_ok());
  ASSERT_EQ(entries.size(), expected_entries);
  std::string previous;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].sequence, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(entries[i].previous_hash, previous);
    EXPECT_EQ(entries[i].hash, chain_hash(entries[i]));
    previous = entries[i].hash;
  }
}

TEST_P(StoreConformanceTest, AuditHeadIsTheNewestEntry) {
  REQUIRE_STORE();
  auto empty = store_->audit_head();
  ASSERT_TRUE(empty.is_ok());
  EXPECT_FALSE(empty->has_value());
  ASSERT_TRUE(store_->append_audit({0, 100, "k1", "a", "t", "ok", "", ""}, chain_hash).is_ok());
  auto second = store_->append_audit({0, 90, "k2", "b", "t", "ok", "", ""}, chain_hash);
  ASSERT_TRUE(second.is_ok());
  auto head = store_->audit_head();
  ASSERT_TRUE(head.is_ok() && head->has_value());
  EXPECT_EQ((*head)->sequence, 2);
  EXPECT_EQ((*head)->hash, second->hash);
  EXPECT_EQ((*head)->actor, "k2");
}

TEST_P(StoreConformanceTest, UserTokenRevocationsOnlyMoveForward) {
  REQUIRE_STORE();
  auto none = store_->user_tokens_revoked_at("alice");
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(store_->revoke_user_tokens("alice", 1000).is_ok());
  ASSERT_TRUE(store_->revoke_user_tokens("alice", 900).is_ok());  // never moves back
  EXPECT_EQ(*store_->user_tokens_revoked_at("alice"), std::optional<UnixSeconds>(1000));
  ASSERT_TRUE(store_->revoke_user_tokens("alice", 2000).is_ok());
  EXPECT_EQ(*store_->user_tokens_revoked_at("alice"), std::optional<UnixSeconds>(2000));
  EXPECT_FALSE(store_->user_tokens_revoked_at("bob")->has_value());
}

TEST_P(StoreConformanceTest, EraseDocumentRemovesIt) {
  REQUIRE_STORE();
  Document document{"secret_1", "server_secret", "active", "{\"key_hex\":\"ab\"}", 1, 1, 0};
  ASSERT_TRUE(store_->put_document(document).is_ok());
  ASSERT_TRUE(store_->erase_document("server_secret", "secret_1").is_ok());
  EXPECT_FALSE(store_->get_document("server_secret", "secret_1")->has_value());
  EXPECT_EQ(store_->erase_document("server_secret", "secret_1").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->put_document(document).is_ok());  // the id is free again
}

TEST_P(StoreConformanceTest, AuditAppendsChainInOrder) {
  REQUIRE_STORE();
  auto first =
      store_->append_audit({0, 100, "k1", "keys.create", "k2", "ok", "x", "y"}, chain_hash);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->sequence, 1);
  EXPECT_EQ(first->previous_hash, "");  // the store ignores what the caller put there
  auto second =
      store_->append_audit({0, 90, "k1", "keys.revoke", "k2", "denied", "", ""}, chain_hash);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(second->sequence, 2);
  EXPECT_EQ(second->previous_hash, first->hash);
  std::vector<AuditEntry> entries;
  ASSERT_TRUE(store_->scan_audit([&](const AuditEntry& e) { entries.push_back(e); }).is_ok());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].at, 90);  // order is append order, not time order
  EXPECT_EQ(entries[1].actor, "k1");
  EXPECT_EQ(entries[1].action, "keys.revoke");
  EXPECT_EQ(entries[1].target, "k2");
  EXPECT_EQ(entries[1].outcome, "denied");
  expect_valid_chain(*store_, 2);
}

TEST_P(StoreConformanceTest, ConcurrentAuditAppendsFromTwoReplicasStayGapFree) {
  REQUIRE_STORE();
  auto replica = open();
  ASSERT_NE(replica, nullptr);
  constexpr int kThreads = 4, kAppends = 15;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& store = t % 2 == 0 ? *store_ : *replica;
      for (int i = 0; i < kAppends; ++i) {
        auto entry = store.append_audit(
            {0, i, "actor" + std::to_string(t), "act" + std::to_string(i), "x", "ok", "", ""},
            chain_hash);
        EXPECT_TRUE(entry.is_ok()) << entry.status().to_string();
      }
    });
  }
  for (auto& t : threads) t.join();
  expect_valid_chain(*store_, kThreads * kAppends);
}

TEST_P(StoreConformanceTest, ExposuresAndAuditEntriesCommitTogetherAndChain) {
  REQUIRE_STORE();
  ASSERT_TRUE(store_->append_audit({0, 1, "k1", "before", "x", "ok", "", ""}, chain_hash).is_ok());
  auto stored = store_->append_exposures_and_audit(
      {{"e", "u1", "control", 10}, {"e", "u2", "variant", 11}, {"f", "u1", "variant", 12}},
      {{0, 10, "k2", "assign", "e:u1", "ok", "ignored", "ignored"},
       {0, 11, "k2", "assign", "e:u2", "ok", "", ""}},
      chain_hash);
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[0].sequence, 2);
  EXPECT_EQ((*stored)[1].sequence, 3);
  EXPECT_EQ((*stored)[1].previous_hash, (*stored)[0].hash);
  // Entries only, exposures only and nothing at all are fine too.
  ASSERT_TRUE(store_->append_exposures_and_audit({}, {{0, 12, "k3", "a", "", "ok", "", ""}},
                                                 chain_hash)
                  .is_ok());
  ASSERT_TRUE(store_->append_exposures_and_audit({{"e", "u3", "control", 13}}, {}, chain_hash)
                  .is_ok());
  ASSERT_TRUE(store_->append_exposures_and_audit({}, {}, chain_hash).is_ok());
  ASSERT_TRUE(store_->append_audit({0, 14, "k1", "after", "x", "ok", "", ""}, chain_hash).is_ok());
  expect_valid_chain(*store_, 5);
  std::vector<AuditEntry> entries;
  ASSERT_TRUE(store_->scan_audit([&](const AuditEntry& e) { entries.push_back(e); }).is_ok());
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[1].target, "e:u1");
  EXPECT_EQ(entries[2].target, "e:u2");
  EXPECT_EQ(entries[3].actor, "k3");
  EXPECT_EQ(entries[4].action, "after");
  auto exposures = collect<ExposureEvent>(
      [&](auto visit) { return store_->scan_exposures("e", visit); });
  std::sort(exposures.begin(), exposures.end(),
            [](const ExposureEvent& a, const ExposureEvent& b) { return a.at < b.at; });
  ASSERT_EQ(exposures.size(), 3u);
  EXPECT_EQ(exposures[0].user_id, "u1");
  EXPECT_EQ(exposures[0].variant, "control");
  EXPECT_EQ(exposures[1].user_id, "u2");
  EXPECT_EQ(exposures[1].at, 11);
  EXPECT_EQ(exposures[2].user_id, "u3");
  EXPECT_EQ(collect<ExposureEvent>([&](auto visit) { return store_->scan_exposures("f", visit); })
                .size(),
            1u);
}

TEST_P(StoreConformanceTest, GroupCommitsFromTwoReplicasKeepOneChain) {
  REQUIRE_STORE();
  auto replica = open();
  ASSERT_NE(replica, nullptr);
  constexpr int kThreads = 4, kGroups = 8, kPerGroup = 3;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& store = t % 2 == 0 ? *store_ : *replica;
      for (int g = 0; g < kGroups; ++g) {
        std::vector<ExposureEvent> exposures;
        std::vector<AuditEntry> entries;
        for (int i = 0; i < kPerGroup; ++i) {
          const std::string user = "t" + std::to_string(t) + "g" + std::to_string(g) + "u" +
                                   std::to_string(i);
          exposures.push_back({"e", user, "control", g});
          entries.push_back({0, g, "actor" + std::to_string(t), "assign", user, "ok", "", ""});
        }
        auto stored = store.append_exposures_and_audit(exposures, entries, chain_hash);
        EXPECT_TRUE(stored.is_ok()) << stored.status().to_string();
      }
    });
  }
  for (auto& t : threads) t.join();
  expect_valid_chain(*store_, kThreads * kGroups * kPerGroup);
  EXPECT_EQ(collect<ExposureEvent>([&](auto visit) { return store_->scan_exposures("e", visit); })
                .size(),
            static_cast<std::size_t>(kThreads * kGroups * kPerGroup));
}

TEST_P(StoreConformanceTest, CampaignMembersAreAddedAllOrNone) {
  REQUIRE_STORE();
  ASSERT_TRUE(
      store_->add_campaign_members({{"c1", "u2", true, 100}, {"c1", "u1", false, 100}}).is_ok());
  ASSERT_TRUE(store_->add_campaign_members({{"c2", "u1", false, 200}}).is_ok());
  ASSERT_TRUE(store_->add_campaign_members({}).is_ok());
  // u1 is already in c2: the whole call fails and u3 is not added either.
  EXPECT_FALSE(
      store_->add_campaign_members({{"c2", "u3", false, 300}, {"c2", "u1", false, 300}}).is_ok());
  auto c1 = store_->campaign_members("c1");
  ASSERT_TRUE(c1.is_ok());
  ASSERT_EQ(c1->size(), 2u);
  EXPECT_EQ((*c1)[0].user_id, "u1");  // ordered by user
  EXPECT_FALSE((*c1)[0].holdout);
  EXPECT_EQ((*c1)[1].user_id, "u2");
  EXPECT_TRUE((*c1)[1].holdout);
  EXPECT_EQ((*c1)[1].targeted_at, 100);
  EXPECT_EQ((*c1)[1].campaign_id, "c1");
  EXPECT_EQ(store_->campaign_members("c2")->size(), 1u);
  EXPECT_TRUE(store_->campaign_members("none")->empty());
  auto last = store_->last_targeted();
  ASSERT_TRUE(last.is_ok());
  std::map<std::string, UnixSeconds> by_user(last->begin(), last->end());
  EXPECT_EQ(by_user, (std::map<std::string, UnixSeconds>{{"u1", 200}, {"u2", 100}}));
}

// A campaign document and its members are stored together or not at all.
TEST_P(StoreConformanceTest, DocumentAndMembersAreStoredTogetherOrNotAtAll) {
  REQUIRE_STORE();
  Document doc{"camp1", "campaign", "draft", R"({"a":1})", 10, 10, 0};
  // A duplicate member fails the insert: the document must not be left behind.
  EXPECT_FALSE(store_
                   ->put_document_and_members(
                       doc, {{"camp1", "u1", false, 10}, {"camp1", "u1", true, 10}})
                   .is_ok());
  EXPECT_FALSE(store_->get_document("campaign", "camp1")->has_value());
  EXPECT_TRUE(store_->campaign_members("camp1")->empty());
  // An existing document (version 0 = create) fails it too: no members are added.
  ASSERT_EQ(*store_->put_document(Document{"camp2", "campaign", "draft", "{}", 10, 10, 0}), 1);
  EXPECT_EQ(store_
                ->put_document_and_members(Document{"camp2", "campaign", "draft", "{}", 10, 10, 0},
                                           {{"camp2", "u9", false, 10}})
                .status()
                .code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(store_->campaign_members("camp2")->empty());
  auto version = store_->put_document_and_members(
      doc, {{"camp1", "u1", false, 10}, {"camp1", "u2", true, 10}});
  ASSERT_TRUE(version.is_ok()) << version.status().to_string();
  EXPECT_EQ(*version, 1);
  EXPECT_EQ((*store_->get_document("campaign", "camp1"))->body, R"({"a":1})");
  EXPECT_EQ(store_->campaign_members("camp1")->size(), 2u);
}

// Hand-computed data set for the experiment analyses (T0 = start of day 100):
//   control:   u1 exposed T0+100 (again T0+5000), u2 T0+200, u6 T0+2d+5
//   treatment: u3 T0+300, u4 T0+1d+10, u5 T0+150 (later also control: multi-variant)
// Metric "rev" per user, relative to first exposure:
//   u1: 7 at T0-1000 (pre, outside a 60 s window), 2 at T0+50 (pre), 3 at T0+100, 4 at T0+1d+7
//   u3: 0 at T0+310, 5 at T0+350   u4: 1.5 at T0+1d (pre), 2.5 at T0+2d+100
//   u5: -1 at T0+200               u6: 10 at T0+2d+6          u2: nothing
class ExperimentAnalysisTest : public StoreConformanceTest {
 protected:
  static constexpr UnixSeconds kT0 = 100 * kDay;
  void ingest_fixture() {
    EventBatch batch;
    batch.exposures = {
        {"e", "u1", "control", kT0 + 100},   {"e", "u1", "control", kT0 + 5000},
        {"e", "u2", "control", kT0 + 200},   {"e", "u6", "control", kT0 + 2 * kDay + 5},
        {"e", "u3", "treatment", kT0 + 300}, {"e", "u4", "treatment", kT0 + kDay + 10},
        {"e", "u5", "treatment", kT0 + 150}, {"e", "u5", "control", kT0 + 400},
        {"other", "u1", "treatment", kT0}};
    batch.metric_events = {{"u1", "rev", 7, kT0 - 1000},
                           {"u1", "rev", 2, kT0 + 50},
                           {"u1", "rev", 3, kT0 + 100},
                           {"u1", "rev", 4, kT0 + kDay + 7},
                           {"u3", "rev", 0, kT0 + 310},
                           {"u3", "rev", 5, kT0 + 350},
                           {"u3", "other_metric", 9, kT0 + 350},
                           {"u4", "rev", 1.5, kT0 + kDay},
                           {"u4", "rev", 2.5, kT0 + 2 * kDay + 100},
                           {"u5", "rev", -1, kT0 + 200},
                           {"u6", "rev", 10, kT0 + 2 * kDay + 6},
                           {"u7", "rev", 50, kT0 + 10}};  // never exposed
    ASSERT_TRUE(store_->ingest(batch).is_ok());
  }
};

TEST_P(ExperimentAnalysisTest, ExposureCountsUseFirstExposure) {
  REQUIRE_STORE();
  ingest_fixture();
  auto counts = store_->exposure_counts("e");
  ASSERT_TRUE(counts.is_ok());
  EXPECT_EQ(*counts,
            (std::vector<std::pair<std::string, std::int64_t>>{{"control", 3}, {"treatment", 3}}));
  EXPECT_EQ(*store_->count_multi_variant_users("e"), 1);
  EXPECT_EQ(*store_->exposure_counts("other"),
            (std::vector<std::pair<std::string, std::int64_t>>{{"treatment", 1}}));
  EXPECT_EQ(*store_->count_multi_variant_users("other"), 0);
  EXPECT_TRUE(store_->exposure_counts("missing")->empty());
}

TEST_P(ExperimentAnalysisTest, FirstExposureVariantIsTheEarliestExposure) {
  REQUIRE_STORE();
  ingest_fixture();
  EXPECT_EQ(*store_->first_exposure_variant("e", "u1"), "control");
  EXPECT_EQ(*store_->first_exposure_variant("e", "u3"), "treatment");
  // u5 saw treatment at T0+150, then control: the first one counts.
  EXPECT_EQ(*store_->first_exposure_variant("e", "u5"), "treatment");
  EXPECT_EQ(*store_->first_exposure_variant("other", "u1"), "treatment");
  EXPECT_FALSE(store_->first_exposure_variant("other", "u3")->has_value());
  EXPECT_FALSE(store_->first_exposure_variant("e", "u7")->has_value());  // has events only
  EXPECT_FALSE(store_->first_exposure_variant("e", "nobody")->has_value());
  EXPECT_FALSE(store_->first_exposure_variant("missing", "u1")->has_value());
  // A later exposure (new segment) is seen by the next lookup.
  EventBatch later;
  later.exposures = {{"other", "u3", "control", kT0 + 9000}};
  ASSERT_TRUE(store_->ingest(later).is_ok());
  EXPECT_EQ(*store_->first_exposure_variant("other", "u3"), "control");
}

TEST_P(ExperimentAnalysisTest, VariantMetricStatsAreSufficientStatistics) {
  REQUIRE_STORE();
  ingest_fixture();
  auto stats = store_->variant_metric_stats("e", "rev", 60);
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  ASSERT_EQ(stats->size(), 2u);
  const VariantMetricStats& control = (*stats)[0];
  EXPECT_EQ(control.variant, "control");
  EXPECT_EQ(control.users, 3);      // u1, u2, u6
  EXPECT_EQ(control.converted, 2);  // u1 (7), u6 (10)
  EXPECT_DOUBLE_EQ(control.sum, 17);
  EXPECT_DOUBLE_EQ(control.sum_squares, 49 + 100);
  EXPECT_DOUBLE_EQ(control.pre_sum, 2);
  EXPECT_DOUBLE_EQ(control.pre_sum_squares, 4);
  EXPECT_DOUBLE_EQ(control.cross_sum, 2 * 7);
  const VariantMetricStats& treatment = (*stats)[1];
  EXPECT_EQ(treatment.variant, "treatment");
  EXPECT_EQ(treatment.users, 3);      // u3, u4, u5
  EXPECT_EQ(treatment.converted, 2);  // u3 (5), u4 (2.5); u5's sum is -1
  EXPECT_DOUBLE_EQ(treatment.sum, 5 + 2.5 - 1);
  EXPECT_DOUBLE_EQ(treatment.sum_squares, 25 + 6.25 + 1);
  EXPECT_DOUBLE_EQ(treatment.pre_sum, 1.5);
  EXPECT_DOUBLE_EQ(treatment.pre_sum_squares, 2.25);
  EXPECT_DOUBLE_EQ(treatment.cross_sum, 1.5 * 2.5);

  // A window of ten years also takes u1's older value into the pre-period; zero takes none.
  auto wide = store_->variant_metric_stats("e", "rev", 3650 * kDay);
  ASSERT_TRUE(wide.is_ok());
  EXPECT_DOUBLE_EQ((*wide)[0].pre_sum, 9);
  EXPECT_DOUBLE_EQ((*wide)[0].pre_sum_squares, 81);
  EXPECT_DOUBLE_EQ((*wide)[0].cross_sum, 63);
  EXPECT_DOUBLE_EQ((*wide)[0].sum, 17);
  auto none = store_->variant_metric_stats("e", "rev", 0);
  ASSERT_TRUE(none.is_ok());
  EXPECT_DOUBLE_EQ((*none)[0].pre_sum, 0);
  EXPECT_DOUBLE_EQ((*none)[1].pre_sum, 0);
  EXPECT_DOUBLE_EQ((*none)[1].sum, 6.5);

  // A metric nobody has: every exposed user is an observation of 0.
  auto empty_metric = store_->variant_metric_stats("e", "absent", 60);
  ASSERT_TRUE(empty_metric.is_ok());
  ASSERT_EQ(empty_metric->size(), 2u);
  EXPECT_EQ((*empty_metric)[0].users, 3);
  EXPECT_EQ((*empty_metric)[0].converted, 0);
  EXPECT_DOUBLE_EQ((*empty_metric)[0].sum, 0);
  EXPECT_TRUE(store_->variant_metric_stats("missing", "rev", 60)->empty());
}

TEST_P(ExperimentAnalysisTest, DailyCumulativeCountsFirstExposureAndFirstConversion) {
  REQUIRE_STORE();
  ingest_fixture();
  auto daily = store_->daily_cumulative("e", "rev");
  ASSERT_TRUE(daily.is_ok()) << daily.status().to_string();
  std::vector<std::tuple<std::string, UnixSeconds, std::int64_t, std::int64_t>> rows;
  for (const auto& row : *daily) rows.emplace_back(row.variant, row.day, row.users, row.converted);
  const std::vector<std::tuple<std::string, UnixSeconds, std::int64_t, std::int64_t>> expected = {
      {"control", kT0, 2, 1},              // u1, u2 exposed; u1 converts at T0+100
      {"control", kT0 + 2 * kDay, 3, 2},   // u6 exposed and converts
      {"treatment", kT0, 2, 1},            // u3, u5 exposed; u3 converts (the 0 does not)
      {"treatment", kT0 + kDay, 3, 1},     // u4 exposed
      {"treatment", kT0 + 2 * kDay, 3, 2}  // u4 converts
  };
  EXPECT_EQ(rows, expected);
  EXPECT_TRUE(store_->daily_cumulative("missing", "rev")->empty());
}

TEST_P(ExperimentAnalysisTest, ExposedUserMetricIsEachUsersObservationAndPrePeriodWindows) {
  REQUIRE_STORE();
  ingest_fixture();
  // Windows before first exposure: (0, 60 s], (60 s, 2000 s], (2000 s, 10 days].
  const std::vector<UnixSeconds> edges = {0, 60, 2000, 10 * kDay};
  auto read = store_->exposed_user_metric("e", "rev", edges);
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  const ExposedUserMetric& users = *read;
  EXPECT_EQ(users.variants, (std::vector<std::string>{"control", "treatment"}));
  ASSERT_EQ(users.windows, 3u);
  ASSERT_EQ(users.size(), 6u);
  ASSERT_EQ(users.user_ids.size(), 6u);
  ASSERT_EQ(users.pre.size(), 18u);
  using Row = std::tuple<std::string, UnixSeconds, double, double, double, double>;
  std::map<std::string, Row> by_user;
  for (std::size_t u = 0; u < users.size(); ++u) {
    by_user[users.user_ids[u]] = {users.variants[users.variant_index[u]],
                                  users.first_exposure_at[u],
                                  users.post[u],
                                  users.pre[u * 3],
                                  users.pre[u * 3 + 1],
                                  users.pre[u * 3 + 2]};
    // The key the rollups use for this user, or none (a backend may key only users with
    // usage events; these have none).
    auto key = store_->find_user_key(users.user_ids[u]);
    ASSERT_TRUE(key.is_ok()) << users.user_ids[u];
    EXPECT_EQ(users.user_keys[u], key->value_or(kNoRollupKey)) << users.user_ids[u];
  }
  // u1: 2 came 50 s and 7 came 1100 s before the first exposure, 3 + 4 after it; u4's 1.5
  // came 10 s before; u5's first exposure is its treatment one. u7 is not exposed.
  const std::map<std::string, Row> expected = {
      {"u1", {"control", kT0 + 100, 7, 2, 7, 0}},
      {"u2", {"control", kT0 + 200, 0, 0, 0, 0}},
      {"u6", {"control", kT0 + 2 * kDay + 5, 10, 0, 0, 0}},
      {"u3", {"treatment", kT0 + 300, 5, 0, 0, 0}},
      {"u4", {"treatment", kT0 + kDay + 10, 2.5, 1.5, 0, 0}},
      {"u5", {"treatment", kT0 + 150, -1, 0, 0, 0}}};
  EXPECT_EQ(by_user, expected);
  // No windows: only the post-exposure observations; a metric nobody has is all zeros.
  auto absent = store_->exposed_user_metric("e", "absent", {});
  ASSERT_TRUE(absent.is_ok());
  EXPECT_EQ(absent->windows, 0u);
  EXPECT_EQ(absent->post, std::vector<double>(6, 0.0));
  EXPECT_TRUE(absent->pre.empty());
  EXPECT_EQ(store_->exposed_user_metric("missing", "rev", edges)->size(), 0u);
  // Edges start at 0 and rise, at most 8 windows of at most ten years in all.
  for (const std::vector<UnixSeconds>& bad : {std::vector<UnixSeconds>{60},
                                              {5, 60},
                                              {0, 60, 60},
                                              {0, 3651 * kDay},
                                              {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    auto refused = store_->exposed_user_metric("e", "rev", bad);
    ASSERT_FALSE(refused.is_ok());
    EXPECT_EQ(refused.status().field(), "pre_window_edges");
  }
  // Awkward doubles come back exactly.
  EventBatch odd;
  odd.exposures = {{"odd", "o1", "a", kT0}, {"odd", "o2", "a", kT0}};
  odd.metric_events = {{"o1", "m", 0.1, kT0 + 1},
                       {"o1", "m", 1e-300, kT0 + 1},
                       {"o2", "m", -123456789.125, kT0 + 2}};
  ASSERT_TRUE(store_->ingest(odd).is_ok());
  auto exact = store_->exposed_user_metric("odd", "m", {});
  ASSERT_TRUE(exact.is_ok());
  std::vector<double> got = exact->post;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<double>{-123456789.125, 0.1 + 1e-300}));
}

TEST_P(ExperimentAnalysisTest, SlicedMetricStatsGroupByAUserAttribute) {
  REQUIRE_STORE();
  ingest_fixture();
  EventBatch users;
  // u6 has no stored user: it falls in slice "". A value literally named "other" is a value.
  users.users = {User{"u1", Tier::kPremium, 1, "DE", "5.0", {{"segment", "student"}}},
                 User{"u2", Tier::kFree, 1, "US", "5.0", {{"segment", "other"}}},
                 User{"u3", Tier::kPremium, 1, "DE", "5.1", {{"segment", "student"}}},
                 User{"u4", Tier::kFree, 1, "", "5.1", {{"plan-code", "x1"}}},
                 User{"u5", Tier::kPlus, 1, "US", "", {{"segment", "other"}}},
                 User{"u7", Tier::kPlus, 1, "FR", "", {{"segment", "never exposed"}}}};
  ASSERT_TRUE(store_->ingest(users).is_ok());
  using Cell = std::tuple<std::string, std::string, std::int64_t, std::int64_t, double, double>;
  auto cells = [&](const std::string& attribute, double cap) {
    auto rows = store_->sliced_metric_stats("e", "rev", attribute, cap);
    EXPECT_TRUE(rows.is_ok()) << attribute << ": " << rows.status().to_string();
    std::vector<Cell> out;
    if (!rows.is_ok()) return out;
    for (const auto& r : *rows) {
      out.emplace_back(r.slice, r.variant, r.users, r.converted, r.sum, r.sum_squares);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  // Per-user values: control u1 7, u2 0, u6 10; treatment u3 5, u4 2.5, u5 -1.
  EXPECT_EQ(cells("tier", INFINITY), (std::vector<Cell>{{"", "control", 1, 1, 10, 100},
                                                        {"free", "control", 1, 0, 0, 0},
                                                        {"free", "treatment", 1, 1, 2.5, 6.25},
                                                        {"plus", "treatment", 1, 0, -1, 1},
                                                        {"premium", "control", 1, 1, 7, 49},
                                                        {"premium", "treatment", 1, 1, 5, 25}}));
  EXPECT_EQ(cells("segment", INFINITY), (std::vector<Cell>{{"", "control", 1, 1, 10, 100},
                                                           {"", "treatment", 1, 1, 2.5, 6.25},
                                                           {"other", "control", 1, 0, 0, 0},
                                                           {"other", "treatment", 1, 0, -1, 1},
                                                           {"student", "control", 1, 1, 7, 49},
                                                           {"student", "treatment", 1, 1, 5, 25}}));
  // Capped at 6: u1's 7 and u6's 10 count as 6 in the sums, still as converted.
  EXPECT_EQ(cells("country", 6), (std::vector<Cell>{{"", "control", 1, 1, 6, 36},
                                                    {"", "treatment", 1, 1, 2.5, 6.25},
                                                    {"DE", "control", 1, 1, 6, 36},
                                                    {"DE", "treatment", 1, 1, 5, 25},
                                                    {"US", "control", 1, 0, 0, 0},
                                                    {"US", "treatment", 1, 0, -1, 1}}));
  EXPECT_EQ(cells("app_version", INFINITY),
            (std::vector<Cell>{{"", "control", 1, 1, 10, 100},
                               {"", "treatment", 1, 0, -1, 1},
                               {"5.0", "control", 2, 1, 7, 49},
                               {"5.1", "treatment", 2, 2, 7.5, 31.25}}));
  EXPECT_EQ(cells("plan-code", INFINITY),
            (std::vector<Cell>{{"", "control", 3, 2, 17, 149},
                               {"", "treatment", 2, 1, 4, 26},
                               {"x1", "treatment", 1, 1, 2.5, 6.25}}));
  // An attribute name that is not one: refused naming "slice", never run as SQL.
  for (const std::string& bad : std::vector<std::string>{
           "", "seg\"ment", "a b", "1tier", "x'); DROP TABLE users; --", std::string(65, 'a')}) {
    auto rows = store_->sliced_metric_stats("e", "rev", bad, INFINITY);
    ASSERT_FALSE(rows.is_ok()) << bad;
    EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(rows.status().field(), "slice");
  }
  auto missing = store_->sliced_metric_stats("missing", "rev", "tier", INFINITY);
  ASSERT_TRUE(missing.is_ok());
  EXPECT_TRUE(missing->empty());
}

std::string backend_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// --- usage rollups ---------------------------------------------------------------------------

// The rows RollupAccumulator gives for `batches`, with the store's own keys.
struct ExpectedRollups {
  std::vector<UserDayRollup> user_days;
  std::vector<FeatureDayRollup> feature_days;
  std::vector<TierChangeRollup> changes;
};

ExpectedRollups expected_rollups(Store& store, const std::vector<EventBatch>& batches) {
  std::map<std::string, std::uint32_t> user_keys, feature_keys;
  EXPECT_TRUE(store
                  .scan_user_keys([&](std::uint32_t key, const std::string& id) {
                    user_keys[id] = key;
                  })
                  .is_ok());
  EXPECT_TRUE(store
                  .scan_feature_keys([&](std::uint32_t key, const std::string& name) {
                    feature_keys[name] = key;
                  })
                  .is_ok());
  RollupAccumulator rollups;
  ExpectedRollups out;
  for (const auto& batch : batches) {
    for (const auto& e : batch.feature_usage) {
      rollups.add_usage(user_keys.at(e.user_id), feature_keys.at(e.feature), e.at, e.count);
    }
    for (const auto& e : batch.sessions) {
      rollups.add_session(user_keys.at(e.user_id), e.at, e.duration_seconds);
    }
    for (const auto& e : batch.payments) {
      rollups.add_payment(user_keys.at(e.user_id), e.at, e.succeeded, e.amount_minor);
    }
    for (const auto& e : batch.paywall_hits) {
      rollups.add_paywall_hit(user_keys.at(e.user_id), feature_keys.at(e.feature), e.at);
    }
    for (const auto& e : batch.subscription_changes) {
      out.changes.push_back({user_keys.at(e.user_id), e.at, e.kind, e.from_tier, e.to_tier});
    }
  }
  out.user_days = rollups.user_days();
  out.feature_days = rollups.feature_days();
  return out;
}

template <typename Row>
void sort_rows(std::vector<Row>& rows) {
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if constexpr (std::is_same_v<Row, FeatureDayRollup>) {
      return std::tie(a.day, a.user_key, a.feature_key) < std::tie(b.day, b.user_key, b.feature_key);
    } else {
      return std::tie(a.day, a.user_key) < std::tie(b.day, b.user_key);
    }
  });
}

std::vector<UserDayRollup> stored_user_days(Store& store, RollupQuery query = {}) {
  std::vector<UserDayRollup> rows;
  EXPECT_TRUE(
      store.scan_user_days(query, [&](const UserDayRollup& r) { rows.push_back(r); }).is_ok());
  sort_rows(rows);
  return rows;
}

std::vector<FeatureDayRollup> stored_feature_days(Store& store, RollupQuery query = {}) {
  std::vector<FeatureDayRollup> rows;
  EXPECT_TRUE(
      store.scan_feature_days(query, [&](const FeatureDayRollup& r) { rows.push_back(r); }).is_ok());
  sort_rows(rows);
  return rows;
}

// Two batches that share user-days (sums must add up across batches), a time before 1970,
// odd user ids, a paywall hit on a feature nobody used, failed and succeeded payments.
std::vector<EventBatch> rollup_batches() {
  const std::string odd = "user\t\"one\"\\,é€";
  EventBatch first, second;
  first.feature_usage = {{odd, "budgets", 10 * kDay + 5, 3},
                         {odd, "budgets", 10 * kDay + 7000, 2},
                         {"u2", "tax_reports", -5, 1},
                         {"u2", "budgets", 11 * kDay, 4}};
  first.sessions = {{odd, 10 * kDay + 1, 60}, {"u2", 11 * kDay + 3, 30}};
  first.payments = {{odd, 10 * kDay + 9, true, 1250}, {odd, 10 * kDay + 10, false, 99}};
  first.paywall_hits = {{"u2", "wealth", 11 * kDay + 50}};
  first.subscription_changes = {
      {odd, 10 * kDay + 11, SubscriptionChangeKind::kUpgrade, Tier::kFree, Tier::kPlus}};
  second.feature_usage = {{odd, "budgets", 10 * kDay + 86399, 1}, {"u3", "wealth", 12 * kDay, 1}};
  second.sessions = {{odd, 10 * kDay + 80000, 45}, {"u2", 11 * kDay - 1, 5}};
  second.payments = {{"u2", 11 * kDay + 1, true, 500}};
  second.paywall_hits = {{odd, "wealth", 10 * kDay + 12}, {odd, "wealth", 10 * kDay + 13}};
  second.subscription_changes = {
      {"u2", 11 * kDay + 2, SubscriptionChangeKind::kCancel, Tier::kPlus, Tier::kFree}};
  return {first, second};
}

TEST_P(StoreConformanceTest, RollupsAddUpEveryIngestedEventPerUserDay) {
  REQUIRE_STORE();
  const auto batches = rollup_batches();
  for (const auto& batch : batches) ASSERT_TRUE(store_->ingest(batch).is_ok());
  const ExpectedRollups expected = expected_rollups(*store_, batches);
  // Spot checks against hand-computed sums (the accumulator is the definition; these keep
  // the definition itself honest).
  ASSERT_EQ(expected.user_days.size(), 5u);  // odd@10, u2@-1, u2@10, u2@11, u3@12
  EXPECT_EQ(stored_user_days(*store_), expected.user_days);
  EXPECT_EQ(stored_feature_days(*store_), expected.feature_days);
  auto key = store_->find_user_key("user\t\"one\"\\,é€");
  ASSERT_TRUE(key.is_ok() && key->has_value());
  auto odd_days = stored_user_days(*store_, RollupQuery{.user_key = **key});
  ASSERT_EQ(odd_days.size(), 1u);
  EXPECT_EQ(odd_days[0].day, 10);
  EXPECT_EQ(odd_days[0].sessions, 2);
  EXPECT_EQ(odd_days[0].session_seconds, 105);
  EXPECT_EQ(odd_days[0].usage_events, 3);
  EXPECT_EQ(odd_days[0].uses, 6);
  EXPECT_EQ(odd_days[0].payments_succeeded, 1);
  EXPECT_EQ(odd_days[0].payments_failed, 1);
  EXPECT_EQ(odd_days[0].amount_succeeded_minor, 1250);
  EXPECT_EQ(odd_days[0].amount_failed_minor, 99);
  EXPECT_EQ(odd_days[0].paywall_hits, 2);
  // A day range is half-open and a user query returns that user's rows only.
  auto u2 = store_->find_user_key("u2");
  ASSERT_TRUE(u2.is_ok() && u2->has_value());
  auto u2_days = stored_user_days(*store_, RollupQuery{-1, 11, **u2});
  ASSERT_EQ(u2_days.size(), 2u);
  EXPECT_EQ(u2_days[0].day, -1);
  EXPECT_EQ(u2_days[1].day, 10);
  EXPECT_EQ(u2_days[1].sessions, 1);  // 11 * kDay - 1 is the last second of day 10
  EXPECT_EQ(stored_user_days(*store_, RollupQuery{12, 13, std::nullopt}).size(), 1u);
  std::vector<TierChangeRollup> changes;
  ASSERT_TRUE(store_->scan_tier_changes(**u2, [&](const auto& c) { changes.push_back(c); }).is_ok());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].at, 11 * kDay + 2);
  EXPECT_EQ(changes[0].to_tier, Tier::kFree);
  auto report = store_->verify_rollups();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->consistent()) << report->examples.front();
  EXPECT_EQ(report->user_days, 5);
  EXPECT_EQ(report->tier_changes, 2);
}

TEST_P(StoreConformanceTest, FailedBatchLeavesRollupsUntouched) {
  REQUIRE_STORE();
  const auto batches = rollup_batches();
  ASSERT_TRUE(store_->ingest(batches[0]).is_ok());
  const auto before_days = stored_user_days(*store_);
  const auto before_features = stored_feature_days(*store_);
  environment_->reject_metric_inserts("blocked");
  EventBatch bad = batches[1];
  bad.metric_events = {{"u9", "blocked", 1.0, 10 * kDay}};
  EXPECT_FALSE(store_->ingest(bad).is_ok());
  EXPECT_EQ(stored_user_days(*store_), before_days);
  EXPECT_EQ(stored_feature_days(*store_), before_features);
  auto report = store_->verify_rollups();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->consistent());
  // The store stays usable and the next good batch adds up.
  bad.metric_events.clear();
  ASSERT_TRUE(store_->ingest(bad).is_ok());
  EXPECT_EQ(stored_user_days(*store_), expected_rollups(*store_, batches).user_days);
}

TEST_P(StoreConformanceTest, VerifyFindsTamperedRollupsAndRebuildRepairsThem) {
  REQUIRE_STORE();
  for (const auto& batch : rollup_batches()) ASSERT_TRUE(store_->ingest(batch).is_ok());
  environment_->execute("UPDATE usage_user_days SET sessions = sessions + 1 WHERE day = 10");
  environment_->execute("DELETE FROM usage_feature_days WHERE day = 12");
  environment_->execute("DELETE FROM usage_tier_changes");
  auto report = store_->verify_rollups();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_FALSE(report->consistent());
  EXPECT_EQ(report->mismatches, 2 /* day 10 rows */ + 1 /* day 12 */ + 2 /* tier changes */);
  EXPECT_FALSE(report->examples.empty());
  ASSERT_TRUE(store_->rebuild_rollups().is_ok());
  auto repaired = store_->verify_rollups();
  ASSERT_TRUE(repaired.is_ok());
  EXPECT_TRUE(repaired->consistent());
}

TEST_P(StoreConformanceTest, MigrationBuildsRollupsForAnExistingStore) {
  REQUIRE_STORE();
  const auto batches = rollup_batches();
  for (const auto& batch : batches) ASSERT_TRUE(store_->ingest(batch).is_ok());
  const auto days = stored_user_days(*store_);
  const auto features = stored_feature_days(*store_);
  store_.reset();
  environment_->drop_rollup_schema();
  store_ = open();
  REQUIRE_STORE();
  auto report = store_->verify_rollups();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->consistent());
  EXPECT_EQ(report->user_days, static_cast<std::int64_t>(days.size()));
  EXPECT_EQ(report->feature_days, static_cast<std::int64_t>(features.size()));
  EXPECT_EQ(stored_user_days(*store_), expected_rollups(*store_, batches).user_days);
}

// --- event identity and idempotency keys (issue 18) ---------------------------------------

// A batch of every kind, each record with an event_id; `tag` is part of each id.
EventBatch identified_batch(const std::string& tag, UnixSeconds at) {
  EventBatch batch;
  batch.users.push_back(User{"u1", Tier::kFree, 1, "", "", {}, "user-" + tag});
  batch.features.push_back(Feature{"budgets", Tier::kFree, 1, 2, "planning", "feature-" + tag});
  batch.feature_usage.push_back(FeatureUsageEvent{"u1", "budgets", at, 2, "usage-" + tag});
  batch.sessions.push_back(SessionEvent{"u1", at, 30, "session-" + tag});
  batch.subscription_changes.push_back(SubscriptionChangeEvent{
      "u1", at, SubscriptionChangeKind::kUpgrade, Tier::kFree, Tier::kPlus, "change-" + tag});
  batch.payments.push_back(PaymentEvent{"u1", at, true, 499, "payment-" + tag});
  batch.paywall_hits.push_back(PaywallHitEvent{"u1", "budgets", at, "paywall-" + tag});
  batch.exposures.push_back(ExposureEvent{"e", "u1", "control", at, "exposure-" + tag});
  batch.metric_events.push_back(MetricEvent{"u1", "revenue", 4.99, at, "metric-" + tag});
  return batch;
}

TEST_P(StoreConformanceTest, RepeatedEventIdsAreStoredOnceAndReportedAsDuplicates) {
  REQUIRE_STORE();
  auto first = store_->ingest(identified_batch("a", 10 * kDay));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->stored, 9);
  EXPECT_EQ(first->duplicates, 0);
  // The same batch again (a retry): nothing is stored a second time.
  auto retried = store_->ingest(identified_batch("a", 10 * kDay));
  ASSERT_TRUE(retried.is_ok()) << retried.status().to_string();
  EXPECT_EQ(retried->stored, 0);
  EXPECT_EQ(retried->duplicates, 9);
  // A batch mixing new ids, old ids, a repeat within the batch and records without an id.
  EventBatch mixed = identified_batch("b", 11 * kDay);
  mixed.sessions.push_back(SessionEvent{"u1", 11 * kDay + 5, 40, "session-a"});  // old
  mixed.sessions.push_back(SessionEvent{"u1", 11 * kDay + 6, 50, "session-b"});  // repeat
  mixed.sessions.push_back(SessionEvent{"u1", 11 * kDay + 7, 60});               // no id
  mixed.sessions.push_back(SessionEvent{"u1", 11 * kDay + 8, 70});               // no id
  // The ids are per kind: a payment may carry the id a session has.
  mixed.payments.push_back(PaymentEvent{"u1", 11 * kDay, false, 100, "session-a"});
  auto stored = store_->ingest(mixed);
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  EXPECT_EQ(stored->duplicates, 2);
  EXPECT_EQ(stored->stored, static_cast<std::int64_t>(mixed.size()) - 2);

  auto sessions = collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); });
  std::multiset<std::int32_t> durations;
  for (const SessionEvent& e : sessions) durations.insert(e.duration_seconds);
  EXPECT_EQ(durations, (std::multiset<std::int32_t>{30, 30, 60, 70}));
  EXPECT_EQ(collect<PaymentEvent>([&](auto v) { return store_->scan_payments({}, v); }).size(), 3u);
  EXPECT_EQ(collect<ExposureEvent>([&](auto v) { return store_->scan_exposures("e", v); }).size(),
            2u);
  EXPECT_EQ(
      collect<MetricEvent>([&](auto v) { return store_->scan_metric_events({}, v); }).size(), 2u);
  // The rollups count what was stored, never a duplicate.
  std::int64_t rolled_up_sessions = 0, session_seconds = 0, payments = 0;
  ASSERT_TRUE(store_
                  ->scan_user_days({}, [&](const UserDayRollup& r) {
                    rolled_up_sessions += r.sessions;
                    session_seconds += r.session_seconds;
                    payments += r.payments_succeeded + r.payments_failed;
                  })
                  .is_ok());
  EXPECT_EQ(rolled_up_sessions, 4);
  EXPECT_EQ(session_seconds, 30 + 30 + 60 + 70);
  EXPECT_EQ(payments, 3);
  auto report = store_->verify_rollups();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->consistent()) << report->examples.front();
  // Another handle (another replica) sees the same ids.
  auto replica = open();
  ASSERT_NE(replica, nullptr);
  auto again = replica->ingest(identified_batch("b", 11 * kDay));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->duplicates, 9);
  EXPECT_EQ(again->stored, 0);
}

TEST_P(StoreConformanceTest, AFailedBatchClaimsNoEventIds) {
  REQUIRE_STORE();
  environment_->reject_metric_inserts("boom");
  EventBatch bad = identified_batch("x", 10 * kDay);
  bad.metric_events.push_back(MetricEvent{"u1", "boom", 1, 10 * kDay, "metric-boom"});
  EXPECT_FALSE(store_->ingest(bad).is_ok());
  // The same ids in a good batch are new: the failed one's claims rolled back with it.
  auto good = store_->ingest(identified_batch("x", 10 * kDay));
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_EQ(good->duplicates, 0);
  EXPECT_EQ(good->stored, 9);
}

TEST_P(StoreConformanceTest, ConcurrentRetriesOfOneBatchStoreItOnce) {
  REQUIRE_STORE();
  auto replica = open();
  ASSERT_NE(replica, nullptr);
  constexpr int kThreads = 4, kEvents = 300;
  EventBatch batch;
  for (int i = 0; i < kEvents; ++i) {
    batch.sessions.push_back(
        SessionEvent{"u" + std::to_string(i % 17), 10 * kDay + i, 1, "s-" + std::to_string(i)});
  }
  std::atomic<std::int64_t> stored{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto report = (t % 2 == 0 ? *store_ : *replica).ingest(batch);
      ASSERT_TRUE(report.is_ok()) << report.status().to_string();
      stored += report->stored;
      duplicates += report->duplicates;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stored.load(), kEvents);
  EXPECT_EQ(duplicates.load(), (kThreads - 1) * kEvents);
  EXPECT_EQ(collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); }).size(),
            static_cast<std::size_t>(kEvents));
  auto report = store_->verify_rollups();
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->consistent());
}

TEST_P(StoreConformanceTest, AnIdempotencyKeyReplaysTheFirstResponseUntilItExpires) {
  REQUIRE_STORE();
  IdempotentRequest request;
  request.key = "key1 retry-1";
  request.fingerprint = "fingerprint-a";
  request.now = 1000;
  request.expires_at = 2000;
  int responses_built = 0;
  request.respond = [&](const IngestReport& report) {
    ++responses_built;
    return std::pair<int, std::string>(200, "{\"stored\":" + std::to_string(report.stored) + "}");
  };
  EventBatch batch;
  batch.sessions = {{"u1", 10 * kDay, 5}, {"u2", 10 * kDay, 6}};
  auto first = store_->ingest(batch, {&request});
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->stored, 2);
  EXPECT_FALSE(first->replayed);
  auto found = store_->find_idempotent_response("key1 retry-1", 1500);
  ASSERT_TRUE(found.is_ok());
  ASSERT_TRUE(*found);
  EXPECT_EQ((*found)->status, 200);
  EXPECT_EQ((*found)->body, "{\"stored\":2}");
  EXPECT_EQ((*found)->fingerprint, "fingerprint-a");
  // A retry (from another replica too): nothing ingested, the first response returned.
  auto replica = open();
  ASSERT_NE(replica, nullptr);
  request.now = 1500;
  auto retried = replica->ingest(batch, {&request});
  ASSERT_TRUE(retried.is_ok()) << retried.status().to_string();
  ASSERT_TRUE(retried->replayed);
  EXPECT_EQ(retried->replayed->body, "{\"stored\":2}");
  EXPECT_EQ(retried->stored, 0);
  EXPECT_EQ(responses_built, 1);
  EXPECT_EQ(collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); }).size(),
            2u);
  // Other keys are independent; an expired key is free again (and expired rows are purged).
  EXPECT_FALSE(*store_->find_idempotent_response("key2 retry-1", 1500));
  EXPECT_FALSE(*store_->find_idempotent_response("key1 retry-1", 2000));
  request.now = 2000;
  request.expires_at = 3000;
  auto later = store_->ingest(batch, {&request});
  ASSERT_TRUE(later.is_ok()) << later.status().to_string();
  EXPECT_FALSE(later->replayed);
  EXPECT_EQ(later->stored, 2);
  EXPECT_EQ(collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); }).size(),
            4u);
}

TEST_P(StoreConformanceTest, ConcurrentRequestsWithOneIdempotencyKeyIngestOnce) {
  REQUIRE_STORE();
  auto replica = open();
  ASSERT_NE(replica, nullptr);
  EventBatch batch;
  for (int i = 0; i < 200; ++i) batch.sessions.push_back({"u" + std::to_string(i), 10 * kDay, 1});
  std::atomic<int> replayed{0}, ingested{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      IdempotentRequest request{"caller k", "same", 1000, 2000,
                                [](const IngestReport&) {
                                  return std::pair<int, std::string>(200, "{}");
                                }};
      auto report = (t % 2 == 0 ? *store_ : *replica).ingest(batch, {&request});
      ASSERT_TRUE(report.is_ok()) << report.status().to_string();
      if (report->replayed) {
        ++replayed;
      } else {
        ++ingested;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ingested.load(), 1);
  EXPECT_EQ(replayed.load(), 3);
  EXPECT_EQ(collect<SessionEvent>([&](auto v) { return store_->scan_sessions({}, v); }).size(),
            200u);
}

TEST_P(StoreConformanceTest, AnAssignmentExposureIsStoredOncePerExperimentUserAndVariant) {
  REQUIRE_STORE();
  auto no_hash = [](const AuditEntry&) { return std::string("h"); };
  ASSERT_TRUE(store_
                  ->append_exposures_and_audit(
                      {{"e", "u1", "control", 10}, {"e", "u1", "control", 11}}, {}, no_hash)
                  .is_ok());
  ASSERT_TRUE(
      store_->append_exposures_and_audit({{"e", "u1", "control", 12}}, {}, no_hash).is_ok());
  // Another variant (the weights changed), another experiment, or the caller's own id: new.
  ASSERT_TRUE(store_
                  ->append_exposures_and_audit({{"e", "u1", "variant", 13},
                                                {"f", "u1", "control", 14},
                                                {"e", "u1", "control", 15, "client-1"},
                                                {"e", "u1", "control", 16, "client-1"}},
                                               {}, no_hash)
                  .is_ok());
  auto exposures = collect<ExposureEvent>([&](auto v) { return store_->scan_exposures("e", v); });
  std::sort(exposures.begin(), exposures.end(),
            [](const ExposureEvent& a, const ExposureEvent& b) { return a.at < b.at; });
  ASSERT_EQ(exposures.size(), 3u);
  EXPECT_EQ(exposures[0].at, 10);  // the first one is kept
  EXPECT_EQ(exposures[1].variant, "variant");
  EXPECT_EQ(exposures[2].at, 15);
  EXPECT_EQ(collect<ExposureEvent>([&](auto v) { return store_->scan_exposures("f", v); }).size(),
            1u);
  // Ids that could be confused without their lengths are different assignments.
  ASSERT_TRUE(store_
                  ->append_exposures_and_audit({{"ab", "c", "control", 20}, {"a", "bc", "control", 21}},
                                               {}, no_hash)
                  .is_ok());
  EXPECT_EQ(collect<ExposureEvent>([&](auto v) { return store_->scan_exposures("ab", v); }).size(),
            1u);
  EXPECT_EQ(collect<ExposureEvent>([&](auto v) { return store_->scan_exposures("a", v); }).size(),
            1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::Values("sqlite", "postgres"),
                         backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, ExperimentAnalysisTest, ::testing::Values("sqlite", "postgres"),
                         backend_name);

}  // namespace
}  // namespace fulcrum
