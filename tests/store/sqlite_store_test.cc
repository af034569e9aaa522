#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "store/sqlite/sqlite_schema.h"
#include "store/store.h"

namespace fulcrum {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("fulcrum_sqlite_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    path_ = (directory_ / "store.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::filesystem::path directory_;
  std::string path_;
};

std::int64_t count_rows(const std::string& path, const std::string& table) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, ("SELECT COUNT(*) FROM " + table).c_str(), -1, &stmt, nullptr);
  sqlite3_step(stmt);
  const std::int64_t count = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return count;
}

TEST_F(SqliteStoreTest, MigratesOnceAndReopens) {
  {
    auto store = open_store(path_);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    EXPECT_EQ(*(*store)->schema_version(), static_cast<int>(sqlite::migrations().size()));
  }
  auto reopened = open_store(path_);
  ASSERT_TRUE(reopened.is_ok());
  EXPECT_EQ(*(*reopened)->schema_version(), static_cast<int>(sqlite::migrations().size()));
  EXPECT_EQ(count_rows(path_, "schema_version"), 1);
}

TEST_F(SqliteStoreTest, RefusesDatabaseFromNewerBuild) {
  { ASSERT_TRUE(open_store(path_).is_ok()); }
  sqlite3* db = nullptr;
  sqlite3_open(path_.c_str(), &db);
  sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto store = open_store(path_);
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SqliteStoreTest, IngestsAndScansEveryEventKind) {
  auto store = std::move(open_store(path_).value());
  EventBatch batch;
  batch.users.push_back(User{"u1", Tier::kFree, 1000, "US", "5.1.0", {{"segment", "student"}}});
  batch.features.push_back(Feature{"budgets", Tier::kFree, 50000, 300, "planning"});
  batch.feature_usage.push_back(FeatureUsageEvent{"u1", "budgets", 2000, 3});
  batch.feature_usage.push_back(FeatureUsageEvent{"u1", "budgets", 5000, 1});
  batch.sessions.push_back(SessionEvent{"u1", 2000, 120});
  batch.subscription_changes.push_back(
      SubscriptionChangeEvent{"u1", 3000, SubscriptionChangeKind::kUpgrade, Tier::kFree, Tier::kPremium});
  batch.payments.push_back(PaymentEvent{"u1", 3000, false, 999});
  batch.paywall_hits.push_back(PaywallHitEvent{"u1", "tax_reports", 2500});
  batch.exposures.push_back(ExposureEvent{"exp1", "u1", "variant", 2000});
  batch.metric_events.push_back(MetricEvent{"u1", "conversion_rate", 1.0, 2100});
  ASSERT_TRUE(store->ingest(batch).is_ok());

  auto user = store->get_user("u1");
  ASSERT_TRUE(user.is_ok() && user->has_value());
  EXPECT_EQ((*user)->tier, Tier::kFree);
  EXPECT_EQ((*user)->attributes.at("segment"), "student");
  EXPECT_FALSE(store->get_user("nobody")->has_value());
  EXPECT_EQ(*store->count_users(), 1);
  ASSERT_EQ(store->list_features()->size(), 1u);
  EXPECT_EQ(store->list_features()->front().monthly_maintenance_cost_minor, 50000);

  int usage_in_range = 0;
  ASSERT_TRUE(store->scan_feature_usage({1500, 3000}, [&](const FeatureUsageEvent& e) {
    EXPECT_EQ(e.count, 3);
    ++usage_in_range;
  }).is_ok());
  EXPECT_EQ(usage_in_range, 1);
  int all_usage = 0;
  ASSERT_TRUE(store->scan_feature_usage({}, [&](const FeatureUsageEvent&) { ++all_usage; }).is_ok());
  EXPECT_EQ(all_usage, 2);
  int payments = 0;
  store->scan_payments({}, [&](const PaymentEvent& e) {
    EXPECT_FALSE(e.succeeded);
    EXPECT_EQ(e.amount_minor, 999);
    ++payments;
  });
  EXPECT_EQ(payments, 1);
  int upgrades = 0;
  store->scan_subscription_changes({}, [&](const SubscriptionChangeEvent& e) {
    EXPECT_EQ(e.to_tier, Tier::kPremium);
    ++upgrades;
  });
  EXPECT_EQ(upgrades, 1);
  EXPECT_EQ(*store->latest_event_time(), 5000);

  // Upsert replaces the user's tier.
  EventBatch upgrade;
  upgrade.users.push_back(User{"u1", Tier::kPremium, 1000, "US", "5.1.0", {}});
  ASSERT_TRUE(store->ingest(upgrade).is_ok());
  EXPECT_EQ((*store->get_user("u1"))->tier, Tier::kPremium);
  EXPECT_EQ(*store->count_users(), 1);
}

TEST_F(SqliteStoreTest, FailedBatchStoresNothing) {
  auto store = std::move(open_store(path_).value());
  // A trigger makes the last table of the batch fail, after earlier tables were written.
  sqlite3* db = nullptr;
  sqlite3_open(path_.c_str(), &db);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TRIGGER boom BEFORE INSERT ON event_segments WHEN NEW.key='boom' "
                         "BEGIN SELECT RAISE(ABORT, 'boom'); END",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EventBatch batch;
  batch.users.push_back(User{"u1", Tier::kFree, 1, "", "", {}});
  batch.sessions.push_back(SessionEvent{"u1", 10, 5});
  batch.metric_events.push_back(MetricEvent{"u1", "ok", 1, 10});
  batch.metric_events.push_back(MetricEvent{"u1", "boom", 1, 11});
  EXPECT_FALSE(store->ingest(batch).is_ok());
  EXPECT_EQ(count_rows(path_, "users"), 0);
  EXPECT_EQ(count_rows(path_, "event_segments"), 0);
  EXPECT_EQ(count_rows(path_, "user_keys"), 0);
  // The store stays usable after the rollback.
  batch.metric_events.pop_back();
  EXPECT_TRUE(store->ingest(batch).is_ok());
  EXPECT_EQ(count_rows(path_, "event_segments WHERE kind = 7"), 1);  // one metric segment
}

TEST_F(SqliteStoreTest, ExperimentAggregatesUseFirstExposureAndPrePeriod) {
  auto store = std::move(open_store(path_).value());
  EventBatch batch;
  // u1 control: pre 2, post 3+4. u2 control: nothing. u3 variant: post 5, exposed twice.
  // u4 first variant then control: counted once in variant and reported as multi-variant.
  batch.exposures = {{"e", "u1", "control", 100}, {"e", "u2", "control", 200},
                     {"e", "u3", "variant", 300}, {"e", "u3", "variant", 400},
                     {"e", "u4", "variant", 150}, {"e", "u4", "control", 500},
                     {"other", "u1", "variant", 10}};
  batch.metric_events = {{"u1", "rev", 2, 50},  {"u1", "rev", 3, 100}, {"u1", "rev", 4, 86400},
                         {"u3", "rev", 5, 350}, {"u3", "other", 9, 350}, {"u1", "rev", 100, 0}};
  ASSERT_TRUE(store->ingest(batch).is_ok());

  auto counts = store->exposure_counts("e");
  ASSERT_TRUE(counts.is_ok());
  ASSERT_EQ(counts->size(), 2u);
  EXPECT_EQ((*counts)[0], (std::pair<std::string, std::int64_t>{"control", 2}));
  EXPECT_EQ((*counts)[1], (std::pair<std::string, std::int64_t>{"variant", 2}));
  EXPECT_EQ(*store->count_multi_variant_users("e"), 1);

  auto stats = store->variant_metric_stats("e", "rev", 60);
  ASSERT_TRUE(stats.is_ok());
  ASSERT_EQ(stats->size(), 2u);
  const auto& control = (*stats)[0];
  EXPECT_EQ(control.variant, "control");
  EXPECT_EQ(control.users, 2);
  EXPECT_EQ(control.converted, 1);
  EXPECT_DOUBLE_EQ(control.sum, 7);
  EXPECT_DOUBLE_EQ(control.sum_squares, 49);
  EXPECT_DOUBLE_EQ(control.pre_sum, 2);  // the value at t=0 is outside the 60 s window
  EXPECT_DOUBLE_EQ(control.pre_sum_squares, 4);
  EXPECT_DOUBLE_EQ(control.cross_sum, 14);
  const auto& variant = (*stats)[1];
  EXPECT_EQ(variant.users, 2);
  EXPECT_EQ(variant.converted, 1);
  EXPECT_DOUBLE_EQ(variant.sum, 5);

  auto daily = store->daily_cumulative("e", "rev");
  ASSERT_TRUE(daily.is_ok());
  // control: day 0 -> 2 users, 1 converted (u1 at t=100); day 1 -> u1's later value does
  // not add a second conversion.
  ASSERT_FALSE(daily->empty());
  EXPECT_EQ(daily->front().variant, "control");
  EXPECT_EQ(daily->front().users, 2);
  EXPECT_EQ(daily->front().converted, 1);
}

TEST_F(SqliteStoreTest, ExperimentAggregatesSeeExposuresAddedAfterAnEarlierCall) {
  auto store = std::move(open_store(path_).value());
  EventBatch batch;
  batch.exposures = {{"e", "u1", "control", 100}};
  ASSERT_TRUE(store->ingest(batch).is_ok());
  ASSERT_EQ(store->exposure_counts("e")->front().second, 1);
  batch.exposures = {{"e", "u2", "control", 200}, {"e", "u1", "variant", 50}};
  ASSERT_TRUE(store->ingest(batch).is_ok());
  auto counts = store->exposure_counts("e");
  ASSERT_EQ(counts->size(), 2u);  // u1's earliest exposure is now the variant one
  EXPECT_EQ((*counts)[0], (std::pair<std::string, std::int64_t>{"control", 1}));
  EXPECT_EQ((*counts)[1], (std::pair<std::string, std::int64_t>{"variant", 1}));
  EXPECT_EQ(*store->count_multi_variant_users("e"), 1);
  // A second process writing the same file is seen too.
  auto other_process_view = std::move(open_store(path_).value());
  batch.exposures = {{"e", "u3", "control", 300}};
  ASSERT_TRUE(other_process_view->ingest(batch).is_ok());
  EXPECT_EQ((*store->exposure_counts("e"))[0].second, 2);
}

TEST_F(SqliteStoreTest, DocumentsUseOptimisticVersions) {
  auto store = std::move(open_store(path_).value());
  Document doc{"t1", "experiment", "draft", R"({"a":1})", 10, 10, 0};
  auto v1 = store->put_document(doc);
  ASSERT_TRUE(v1.is_ok());
  EXPECT_EQ(*v1, 1);
  EXPECT_EQ(store->put_document(doc).status().code(), StatusCode::kAlreadyExists);
  doc.version = 1;
  doc.status = "active";
  EXPECT_EQ(*store->put_document(doc), 2);
  doc.version = 1;  // stale writer
  EXPECT_EQ(store->put_document(doc).status().code(), StatusCode::kFailedPrecondition);
  auto stored = store->get_document("experiment", "t1");
  ASSERT_TRUE(stored.is_ok() && stored->has_value());
  EXPECT_EQ((*stored)->status, "active");
  EXPECT_EQ((*stored)->version, 2);
  EXPECT_EQ(store->list_documents("experiment")->size(), 1u);
  EXPECT_TRUE(store->list_documents("campaign")->empty());
}

TEST_F(SqliteStoreTest, ApiKeysAuditAndCampaignMembers) {
  auto store = std::move(open_store(path_).value());
  ASSERT_TRUE(store->put_api_key({"k1", "hash1", "admin", "ops", 5, std::nullopt}).is_ok());
  EXPECT_FALSE(store->put_api_key({"k2", "hash1", "admin", "dup", 5, std::nullopt}).is_ok());
  EXPECT_TRUE(store->find_api_key_by_hash("hash1")->has_value());
  ASSERT_TRUE(store->revoke_api_key("k1", 9).is_ok());
  EXPECT_EQ(*(*store->find_api_key_by_hash("hash1"))->revoked_at, 9);
  EXPECT_EQ(store->revoke_api_key("k1", 10).code(), StatusCode::kNotFound);

  auto hash = [](const AuditEntry& e) { return e.previous_hash + "+" + std::to_string(e.sequence); };
  auto first = store->append_audit({0, 1, "k1", "keys.create", "k2", "ok", "", ""}, hash);
  auto second = store->append_audit({0, 2, "k1", "keys.revoke", "k2", "ok", "", ""}, hash);
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  EXPECT_EQ(first->sequence, 1);
  EXPECT_EQ(second->sequence, 2);
  EXPECT_EQ(second->previous_hash, first->hash);
  std::vector<std::int64_t> sequences;
  store->scan_audit([&](const AuditEntry& e) { sequences.push_back(e.sequence); });
  EXPECT_EQ(sequences, (std::vector<std::int64_t>{1, 2}));

  ASSERT_TRUE(store->add_campaign_members({{"c1", "u1", false, 100}, {"c1", "u2", true, 100}}).is_ok());
  ASSERT_TRUE(store->add_campaign_members({{"c2", "u1", false, 200}}).is_ok());
  EXPECT_FALSE(store->add_campaign_members({{"c2", "u3", false, 1}, {"c2", "u1", false, 1}}).is_ok());
  EXPECT_EQ(store->campaign_members("c2")->size(), 1u);  // the failed call stored nothing
  auto last = store->last_targeted();
  ASSERT_TRUE(last.is_ok());
  ASSERT_EQ(last->size(), 2u);
  for (const auto& [user, at] : *last) EXPECT_EQ(at, user == "u1" ? 200 : 100);
}

TEST(OpenStoreTest, ReportsUnopenableLocations) {
  EXPECT_FALSE(open_store("").is_ok());
  EXPECT_FALSE(open_store("/nonexistent-dir/x/y.db").is_ok());
}

}  // namespace
}  // namespace fulcrum

namespace fulcrum {
namespace {

// A database written by schema 1 (one table per event kind) opens with its events intact.
TEST_F(SqliteStoreTest, MigratesSchemaOneEventTablesIntoSegments) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const std::string schema_one = std::string(sqlite::migrations()[0]) + R"sql(
      CREATE TABLE schema_version(version INTEGER NOT NULL);
      INSERT INTO schema_version VALUES (1);
      INSERT INTO feature_usage VALUES ('u1', 'budgets', 100, 2), ('u2', 'tax', 200, 1);
      INSERT INTO sessions VALUES ('u1', 100, 60);
      INSERT INTO subscription_changes VALUES ('u2', 300, 0, 0, 2);
      INSERT INTO payments VALUES ('u2', 310, 0, 999);
      INSERT INTO paywall_hits VALUES ('u1', 'wealth', 150);
      INSERT INTO exposures VALUES ('exp', 'u1', 'control', 100), ('exp', 'u2', 'variant', 100);
      INSERT INTO metric_events VALUES ('u1', 'revenue', 2.5, 120), ('u2', 'revenue', 4.0, 130);
    )sql";
    ASSERT_EQ(sqlite3_exec(db, schema_one.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  auto store = open_store(path_);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  EXPECT_EQ(*(*store)->schema_version(), static_cast<int>(sqlite::migrations().size()));
  std::vector<FeatureUsageEvent> usage;
  ASSERT_TRUE((*store)->scan_feature_usage({}, [&](const auto& e) { usage.push_back(e); }).is_ok());
  ASSERT_EQ(usage.size(), 2u);
  std::sort(usage.begin(), usage.end(), [](auto& a, auto& b) { return a.at < b.at; });
  EXPECT_EQ(std::tie(usage[1].user_id, usage[1].feature, usage[1].at, usage[1].count),
            std::make_tuple(std::string("u2"), std::string("tax"), UnixSeconds{200}, 1));
  std::vector<PaymentEvent> payments;
  ASSERT_TRUE((*store)->scan_payments({}, [&](const auto& e) { payments.push_back(e); }).is_ok());
  ASSERT_EQ(payments.size(), 1u);
  EXPECT_EQ(payments[0].amount_minor, 999);
  EXPECT_FALSE(payments[0].succeeded);
  auto revenue = (*store)->variant_metric_stats("exp", "revenue", 0);
  ASSERT_TRUE(revenue.is_ok());
  ASSERT_EQ(revenue->size(), 2u);
  EXPECT_EQ((*revenue)[0].variant, "control");
  EXPECT_DOUBLE_EQ((*revenue)[0].sum, 2.5);
  EXPECT_DOUBLE_EQ((*revenue)[1].sum, 4.0);
  // The schema-1 tables are gone; new events go to segments.
  EXPECT_EQ(count_rows(path_, "sqlite_master WHERE name = 'metric_events'"), 0);
  EventBatch more;
  more.sessions.push_back(SessionEvent{"u3", 500, 30});
  ASSERT_TRUE((*store)->ingest(more).is_ok());
  std::size_t sessions = 0;
  ASSERT_TRUE((*store)->scan_sessions({}, [&](const auto&) { ++sessions; }).is_ok());
  EXPECT_EQ(sessions, 2u);
}

// Many one-event writes (an assignment's exposure each) top up one segment instead of
// leaving a segment per event, and every event stays readable.
TEST_F(SqliteStoreTest, SmallBatchesShareSegments) {
  auto store = std::move(open_store(path_).value());
  for (int i = 0; i < 300; ++i) {
    EventBatch one;
    one.exposures.push_back(ExposureEvent{"exp", "u" + std::to_string(i), i % 2 ? "b" : "a", i});
    ASSERT_TRUE(store->ingest(one).is_ok());
    // Reading in between must not serve a stale cached table.
    if (i % 100 == 99) {
      EXPECT_EQ((*store->exposure_counts("exp"))[0].second, (i + 1) / 2);
    }
  }
  EXPECT_EQ(count_rows(path_, "event_segments"), 1);
  std::size_t seen = 0;
  ASSERT_TRUE(store->scan_exposures("exp", [&](const auto&) { ++seen; }).is_ok());
  EXPECT_EQ(seen, 300u);
}

}  // namespace
}  // namespace fulcrum

namespace fulcrum {
namespace {

// Two writers on one file (the server and `fulcrum import`, say) hand out user keys from the
// same table: neither may reuse a key the other gave, and both read every name back.
TEST_F(SqliteStoreTest, TwoWritersOnOneFileShareUserKeys) {
  auto first = std::move(open_store(path_).value());
  auto second = std::move(open_store(path_).value());
  auto sessions_of = [](const std::string& user, UnixSeconds at) {
    EventBatch batch;
    batch.sessions.push_back(SessionEvent{user, at, 1});
    return batch;
  };
  ASSERT_TRUE(first->ingest(sessions_of("alice", 1)).is_ok());
  ASSERT_TRUE(second->ingest(sessions_of("bob", 2)).is_ok());    // second learns alice's key
  ASSERT_TRUE(first->ingest(sessions_of("carol", 3)).is_ok());   // first learns bob's key
  ASSERT_TRUE(second->ingest(sessions_of("alice", 4)).is_ok());  // an existing key
  EXPECT_EQ(count_rows(path_, "user_keys"), 3);
  for (Store* store : {first.get(), second.get()}) {
    std::map<UnixSeconds, std::string> by_time;
    ASSERT_TRUE(store->scan_sessions({}, [&](const SessionEvent& e) { by_time[e.at] = e.user_id; })
                    .is_ok());
    EXPECT_EQ(by_time, (std::map<UnixSeconds, std::string>{
                           {1, "alice"}, {2, "bob"}, {3, "carol"}, {4, "alice"}}));
  }
}

}  // namespace
}  // namespace fulcrum
