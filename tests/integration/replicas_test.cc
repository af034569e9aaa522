// Two `fulcrum serve` replicas on one PostgreSQL database, as behind a load balancer
// (docs/postgres.md): an experiment created on one and started on the other, users and
// events ingested through both at once, every user assigned through both. The replicas must
// agree on every assignment, and the results (from either replica) must count every exposed
// user and every conversion exactly once. The audit chain written by both must verify.
// Needs FULCRUM_TEST_PG_URL (scripts/pg-test-server.sh); fails in CI without it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "integration_support.h"

namespace {

using json = nlohmann::json;

using fulcrum::integration::http;
using fulcrum::integration::kApi;
using fulcrum::integration::Reply;
using fulcrum::integration::run_cli;

// Every replica must sign user tokens with the same secret (docs/postgres.md).

// A `fulcrum serve` replica sharing the token secret.
class Replica : public fulcrum::integration::ServerProcess {
 public:
  explicit Replica(const std::string& store)
      : ServerProcess(store, {"--workers", "4"}) {}
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("FULCRUM_TEST_PG_URL");
    if (url == nullptr || *url == '\0') {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << "FULCRUM_TEST_PG_URL is not set: CI must run the replicas test";
      }
      GTEST_SKIP() << "FULCRUM_TEST_PG_URL not set";
    }
    url_ = url;
    schema_ = "fulcrum_replicas_" + std::to_string(::getpid()) + "_" +
              std::to_string(std::random_device{}() % 1000000);
    admin_ = PQconnectdb(url_.c_str());
    ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
    PQclear(PQexec(admin_, ("CREATE SCHEMA " + schema_).c_str()));
    const char separator = url_.find('?') == std::string::npos ? '?' : '&';
    store_ = url_ + separator + "options=-csearch_path%3D" + schema_;
    // One key file for the CLI and both replicas (a PostgreSQL store has no default one);
    // children inherit the environment.
    key_file_ = (std::filesystem::temp_directory_path() / (schema_ + ".keys")).string();
    ::setenv("FULCRUM_KEY_FILE", key_file_.c_str(), 1);
  }
  void TearDown() override {
    if (admin_ != nullptr) {
      PQclear(PQexec(admin_, ("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " +
                              schema_ + " CASCADE")
                                 .c_str()));
      PQfinish(admin_);
    }
    ::unsetenv("FULCRUM_KEY_FILE");
    if (!key_file_.empty()) {
      std::error_code ignored;
      for (const char* suffix : {"", ".lock"}) std::filesystem::remove(key_file_ + suffix, ignored);
      std::filesystem::remove(
          key_file_.substr(0, key_file_.size() - 5) + ".audit-checkpoints", ignored);
    }
  }

  std::string url_, schema_, store_, key_file_;
  PGconn* admin_ = nullptr;
};

TEST_F(ReplicasTest, TwoReplicasAgreeOnAssignmentsAndCountEveryEvent) {
  int exit_code = 0;
  const std::string created =
      run_cli("--store '" + store_ + "' keys create --role admin", exit_code);
  ASSERT_EQ(exit_code, 0) << created;
  const std::size_t at = created.find("secret: ");
  ASSERT_NE(at, std::string::npos) << created;
  const std::string key = created.substr(at + 8, created.find('\n', at) - at - 8);

  Replica a(store_), b(store_);
  ASSERT_GT(a.port(), 0) << "replica a did not start";
  ASSERT_GT(b.port(), 0) << "replica b did not start";
  const int ports[2] = {a.port(), b.port()};

  // Created on one replica, started on the other.
  const json test = {{"test_name", "Replica test"},
                     {"feature_name", "account_linking"},
                     {"description", "two replicas"},
                     {"hypothesis", "none"},
                     {"success_metrics", {"conversion_rate"}},
                     {"test_groups", {{"control", {{"ui", "old"}}}, {"variant", {{"ui", "new"}}}}},
                     {"traffic_allocation", {{"control", 0.5}, {"variant", 0.5}}}};
  Reply create = http(ports[0], "POST", kApi + "/ab-tests", key, test.dump());
  ASSERT_EQ(create.status, 201) << create.body;
  const std::string test_id = create.parsed().value("test_id", "");
  ASSERT_FALSE(test_id.empty()) << create.body;
  Reply start = http(ports[1], "POST", kApi + "/ab-tests/" + test_id + "/start", key);
  ASSERT_EQ(start.status, 200) << start.body;

  constexpr int kUsers = 160, kChunk = 20;
  auto user_id = [](int i) { return "user-" + std::to_string(i); };

  // Users ingested through both replicas at once, in small batches.
  std::vector<std::thread> writers;
  for (int r = 0; r < 2; ++r) {
    writers.emplace_back([&, r] {
      for (int first = r * kChunk; first < kUsers; first += 2 * kChunk) {
        json events = json::array();
        for (int i = first; i < first + kChunk; ++i) {
          events.push_back({{"type", "user"},
                            {"user_id", user_id(i)},
                            {"tier", "free"},
                            {"signup_at", "2024-01-01T00:00:00Z"}});
        }
        Reply stored =
            http(ports[r], "POST", kApi + "/events", key, json{{"events", events}}.dump());
        EXPECT_EQ(stored.status, 200) << stored.body;
      }
    });
  }
  for (auto& t : writers) t.join();
  writers.clear();

  // Every user assigned through both replicas, concurrently.
  std::vector<std::map<std::string, std::string>> seen(2);
  for (int r = 0; r < 2; ++r) {
    writers.emplace_back([&, r] {
      for (int i = 0; i < kUsers; ++i) {
        const int u = r == 0 ? i : kUsers - 1 - i;  // opposite orders
        Reply assigned = http(ports[r], "POST", kApi + "/ab-tests/" + test_id + "/assign", key,
                              json{{"user_id", user_id(u)}}.dump());
        EXPECT_EQ(assigned.status, 200) << assigned.body;
        json body = assigned.parsed();
        if (body.is_object() && body["variant"].is_string()) {
          seen[r][user_id(u)] = body["variant"].get<std::string>();
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  writers.clear();
  ASSERT_EQ(seen[0].size(), static_cast<std::size_t>(kUsers));
  EXPECT_EQ(seen[0], seen[1]) << "replicas disagree on assignments";

  // Conversions for every third user, sent through alternating replicas at once. Their time
  // is now, at or after every exposure.
  const long now = static_cast<long>(std::time(nullptr));
  std::map<std::string, int> users_per_variant, converters_per_variant;
  for (const auto& [user, variant] : seen[0]) ++users_per_variant[variant];
  for (int r = 0; r < 2; ++r) {
    writers.emplace_back([&, r] {
      json events = json::array();
      for (int i = r * 3; i < kUsers; i += 6) {
        events.push_back({{"type", "metric"},
                          {"user_id", user_id(i)},
                          {"metric", "conversion_rate"},
                          {"value", 1},
                          {"at", now}});
      }
      Reply stored = http(ports[r], "POST", kApi + "/events", key, json{{"events", events}}.dump());
      EXPECT_EQ(stored.status, 200) << stored.body;
    });
  }
  for (auto& t : writers) t.join();
  for (int i = 0; i < kUsers; i += 3) ++converters_per_variant[seen[0][user_id(i)]];

  // Both replicas report the same, complete counts.
  for (int r = 0; r < 2; ++r) {
    Reply results = http(ports[r], "GET", kApi + "/ab-tests/" + test_id + "/results", key);
    ASSERT_EQ(results.status, 200) << results.body;
    json body = results.parsed();
    ASSERT_TRUE(body.is_object()) << results.body;
    int total = 0;
    for (const auto& [group, users] : users_per_variant) {
      const json& analysis = body["group_analysis"][group];
      ASSERT_TRUE(analysis.is_object()) << "no group " << group << " in " << results.body;
      EXPECT_EQ(analysis["sample_size"].get<int>(), users) << group << " via replica " << r;
      const double rate = analysis["conversion_rate"].get<double>();
      EXPECT_NEAR(rate * users, converters_per_variant[group], 1e-6)
          << group << " via replica " << r;
      total += analysis["sample_size"].get<int>();
    }
    EXPECT_EQ(total, kUsers);
    if (body.contains("multi_variant_users")) {
      EXPECT_EQ(body["multi_variant_users"], 0);
    }
  }

  // Audit entries appended by both replicas (and the CLI) form one valid chain.
  const std::string verified = run_cli("--store '" + store_ + "' audit verify", exit_code);
  EXPECT_EQ(exit_code, 0) << verified;
}

}  // namespace
