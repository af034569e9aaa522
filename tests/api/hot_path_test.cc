// The server's fast paths for A/B tests: the parsed-test cache behind GET /ab-tests/{id} and
// assignment (fresh after writes through the server, bounded staleness for writes made
// elsewhere) and the group commit of assignment exposures with their audit entries.
#include <sqlite3.h>

#include <atomic>
#include <thread>

#include "api/audit.h"
#include "api_test_support.h"

#ifdef FULCRUM_HAVE_EXPERIMENTS
#include "experiments/service.h"

namespace fulcrum::api::testing {
namespace {

const char* kCreate = R"({
  "test_name": "Hot path", "feature_name": "account_linking",
  "success_metrics": ["conversion_rate"],
  "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
  "traffic_allocation": {"control": 0.5, "variant": 0.5}})";

class HotPathTest : public ApiServerTest {
 protected:
  void configure(ServerOptions& options) override {
    options.experiment_cache = std::chrono::milliseconds(50);
    options.worker_threads = 2;
  }
  std::string create_started() {
    HttpReply created = call("POST", api("/ab-tests"), kCreate, keys_["admin"]);
    EXPECT_EQ(created.status, 201) << created.body;
    const std::string id = created.json().value("test_id", "");
    EXPECT_EQ(call("POST", api("/ab-tests/" + id + "/start"), "", keys_["admin"]).status, 200);
    return id;
  }
  HttpReply get(const std::string& id) {
    return call("GET", api("/ab-tests/" + id), "", keys_["analyst"]);
  }
  HttpReply assign(const std::string& id, const std::string& user) {
    return call("POST", api("/ab-tests/" + id + "/assign"), R"({"user_id": ")" + user + R"("})",
                keys_["service"]);
  }
  std::size_t exposures_of(const std::string& id) {
    std::size_t count = 0;
    EXPECT_TRUE(store_->scan_exposures(id, [&](const ExposureEvent&) { ++count; }).is_ok());
    return count;
  }
  std::size_t audited(const std::string& action, const std::string& outcome) {
    std::size_t count = 0;
    for (const AuditEntry& e : audit_entries()) {
      if (e.action == action && e.outcome == outcome) ++count;
    }
    return count;
  }
};

TEST_F(HotPathTest, ReadAfterWriteThroughTheServerSeesTheNewVersion) {
  const std::string id = create_started();
  HttpReply before = get(id);  // now cached
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_EQ(before.json()["status"], "active");
  const auto version = before.json()["version"].get<std::int64_t>();
  ASSERT_EQ(get(id).json()["version"], version);  // served from the cache, same document

  ASSERT_EQ(call("POST", api("/ab-tests/" + id + "/pause"), "", keys_["admin"]).status, 200);
  HttpReply after = get(id);  // immediately, well within the revalidation interval
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.json()["status"], "paused");
  EXPECT_EQ(after.json()["version"], version + 1);
  // Assignment reads the same cache: a paused test records nothing.
  HttpReply paused = assign(id, "u1");
  ASSERT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(paused.json()["reason"], "not_active");
  EXPECT_EQ(paused.json()["exposure_recorded"], false);

  ASSERT_EQ(call("POST", api("/ab-tests/" + id + "/resume"), "", keys_["admin"]).status, 200);
  HttpReply resumed = assign(id, "u1");
  EXPECT_EQ(resumed.json()["reason"], "assigned");
  EXPECT_EQ(get(id).json()["version"], version + 2);
}

TEST_F(HotPathTest, WritesMadeElsewhereAreSeenWithinTheRevalidationInterval) {
  const std::string id = create_started();
  ASSERT_EQ(get(id).json()["status"], "active");  // cached
  // Another process (a replica, the CLI) pauses the test behind this server's back.
  SystemClock clock;
  ASSERT_TRUE(experiments::pause_ab_test(*store_, clock, id).is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(get(id).json()["status"], "paused");
  EXPECT_EQ(assign(id, "u1").json()["reason"], "not_active");
  EXPECT_EQ(exposures_of(id), 0u);
}

TEST_F(HotPathTest, UnknownTestIsStill404AndNotCached) {
  EXPECT_EQ(get("nope").status, 404);
  EXPECT_EQ(assign("nope", "u1").status, 404);
  EXPECT_EQ(audited("POST /ab-tests/{test_id}/assign", "error: 404"), 1u);
}

TEST_F(HotPathTest, ConcurrentAssignsAreEachCommittedWithTheirAuditEntry) {
  const std::string id = create_started();
  constexpr int kClients = 16, kPerClient = 10;
  std::atomic<int> ok{0}, recorded{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(port_);  // keep-alive: requests from all clients overlap
      for (int i = 0; i < kPerClient; ++i) {
        const std::string user = "c" + std::to_string(c) + "_" + std::to_string(i);
        HttpReply reply = client.request("POST", api("/ab-tests/" + id + "/assign"),
                                         R"({"user_id": ")" + user + R"("})", keys_["service"]);
        if (reply.status == 200) ++ok;
        if (reply.json().value("exposure_recorded", false)) ++recorded;
      }
    });
  }
  for (auto& t : clients) t.join();
  constexpr int kTotal = kClients * kPerClient;
  EXPECT_EQ(ok.load(), kTotal);
  EXPECT_EQ(recorded.load(), kTotal);
  // Every 200 is durable: one exposure and one "ok" audit entry per call, in one valid chain.
  EXPECT_EQ(exposures_of(id), static_cast<std::size_t>(kTotal));
  EXPECT_EQ(audited("POST /ab-tests/{test_id}/assign", "ok"), static_cast<std::size_t>(kTotal));
  auto verified = verify_audit_chain(*store_, server_->audit_key());
  ASSERT_TRUE(verified.is_ok());
  EXPECT_TRUE(verified->intact) << (verified->problems.empty() ? "" : verified->problems[0]);
}

TEST_F(HotPathTest, FailedCommitIsA500AndStoresNoExposure) {
  const std::string id = create_started();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TRIGGER reject BEFORE INSERT ON event_segments WHEN NEW.kind = 6 BEGIN "
                         "SELECT RAISE(ABORT, 'disk says no'); END",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  HttpReply failed = assign(id, "u1");
  EXPECT_EQ(failed.status, 500) << failed.body;
  EXPECT_EQ(failed.header("content-type"), "application/problem+json");
  EXPECT_EQ(exposures_of(id), 0u);
  // The failure is audited, and the chain stays valid.
  EXPECT_EQ(audited("POST /ab-tests/{test_id}/assign", "ok"), 0u);
  EXPECT_EQ(audited("POST /ab-tests/{test_id}/assign", "error: 500"), 1u);
  ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER reject", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(assign(id, "u1").status, 200);
  EXPECT_EQ(exposures_of(id), 1u);
  auto verified = verify_audit_chain(*store_, server_->audit_key());
  ASSERT_TRUE(verified.is_ok());
  EXPECT_TRUE(verified->intact);
}

}  // namespace
}  // namespace fulcrum::api::testing

#endif  // FULCRUM_HAVE_EXPERIMENTS
