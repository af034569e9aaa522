// Trained models shared through the store, as two replicas share one database: two services
// (each with its own Store handle) on one SQLite file or one PostgreSQL schema. The second
// loads the first's model instead of training; a corrupted stored model is refused and
// retrained; a model of other options is not used; a loaded model scores bit for bit as the
// stored one; two replicas starting at once train once. PostgreSQL runs where
// FULCRUM_TEST_PG_URL is set (scripts/pg-test-server.sh), as in store_conformance_test.cc.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <bit>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/ids.h"
#include "demo/demo_data.h"
#include "lifecycle/upgrade_timing.h"
#include "recommend/recommendations.h"
#include "store/model_document_store.h"

namespace fulcrum {
namespace {

using json = nlohmann::json;

constexpr UnixSeconds kEnd = 1'735'689'600;  // 2025-01-01

StoredModelHolderOptions test_holder_options(std::vector<std::string>* log = nullptr) {
  StoredModelHolderOptions options;
  options.wait_poll = std::chrono::milliseconds(20);
  options.wait_polls = 3000;  // a minute: the other replica's training
  if (log != nullptr) {
    auto mutex = std::make_shared<std::mutex>();
    options.log = [log, mutex](std::string_view line) {
      std::lock_guard lock(*mutex);
      log->emplace_back(line);
    };
  }
  return options;
}

class SharedModelsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      directory_ = std::filesystem::temp_directory_path() /
                   ("fulcrum_shared_models_" + std::to_string(::getpid()) + "_" +
                    std::to_string(std::random_device{}()));
      std::filesystem::create_directories(directory_);
      location_ = (directory_ / "store.db").string();
    } else {
      const char* url = std::getenv("FULCRUM_TEST_PG_URL");
      if (url == nullptr || *url == '\0') {
        const char* ci = std::getenv("CI");
        if (ci != nullptr && std::string(ci) == "true") {
          FAIL() << "FULCRUM_TEST_PG_URL is not set: CI must run the PostgreSQL cases";
        }
        GTEST_SKIP() << "FULCRUM_TEST_PG_URL not set (scripts/pg-test-server.sh)";
      }
      url_ = url;
      schema_ = "fulcrum_models_" + std::to_string(::getpid()) + "_" +
                std::to_string(std::random_device{}() % 1000000);
      admin_ = PQconnectdb(url_.c_str());
      ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
      exec("SET client_min_messages = warning");
      exec("CREATE SCHEMA " + schema_);
      const char separator = url_.find('?') == std::string::npos ? '?' : '&';
      location_ = url_ + separator + "options=-csearch_path%3D" + schema_;
    }
    first_ = open();
    second_ = open();
    ASSERT_TRUE(first_ && second_);
    demo::DemoOptions options;
    options.users = 1000;
    options.days = 90;  // the upgrade model needs weekly snapshots with upgrades
    options.end = kEnd;
    auto summary = demo::generate_demo_data(
        options, [&](const EventBatch& batch) { return first_->ingest(batch).status(); });
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    scan_users();
  }
  void TearDown() override {
    first_.reset();
    second_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
    if (admin_ != nullptr) {
      if (PQstatus(admin_) == CONNECTION_OK) exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
      PQfinish(admin_);
    }
  }
  std::unique_ptr<Store> open() {
    auto store = open_store(location_);
    EXPECT_TRUE(store.is_ok()) << store.status().to_string();
    return store.is_ok() ? std::move(store).value() : nullptr;
  }
  void exec(const std::string& sql) {
    PGresult* result = PQexec(admin_, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(result);
    PQclear(result);
  }
  void scan_users() {
    ASSERT_TRUE(first_
                    ->scan_users([&](const User& user) {
                      if (user.tier != Tier::kPremium && sample_users_.size() < 25) {
                        sample_users_.push_back(user.user_id);
                      }
                    })
                    .is_ok());
    ASSERT_FALSE(sample_users_.empty());
  }
  // Flips one character of the stored payload (to another base64 character), behind the
  // holders' backs, through the store's document API.
  void corrupt_stored(const std::string& name) {
    auto doc = first_->get_document(kTrainedModelKind, name);
    ASSERT_TRUE(doc.is_ok() && doc->has_value());
    Document tampered = **doc;
    const std::string marker = "\"payload_base64\":\"";
    const auto at = tampered.body.find(marker);
    ASSERT_NE(at, std::string::npos);
    char& c = tampered.body[at + marker.size() + 40];
    c = c == 'A' ? 'B' : 'A';
    ASSERT_TRUE(first_->put_document(tampered).is_ok());
  }
  json recommendations_of(RecommendationService& service, Store& store, const Clock& clock) {
    json all = json::object();
    for (const auto& user : sample_users_) {
      auto recs = service.for_user(store, clock, user);
      EXPECT_TRUE(recs.is_ok()) << recs.status().to_string();
      if (recs.is_ok()) all[user] = recommendations_to_json(*recs);
    }
    return all;
  }
  json timings_of(UpgradeTimingService& service, Store& store, const Clock& clock) {
    json all = json::object();
    for (const auto& user : sample_users_) {
      auto timing = service.for_user(store, clock, user);
      EXPECT_TRUE(timing.is_ok()) << timing.status().to_string();
      if (timing.is_ok()) all[user] = timing->to_json();
    }
    return all;
  }

  std::filesystem::path directory_;
  std::string url_, schema_, location_;
  PGconn* admin_ = nullptr;
  std::unique_ptr<Store> first_, second_;  // two replicas' handles on one store
  std::vector<std::string> sample_users_;
  ManualClock clock_{kEnd};
};

#define REQUIRE_STORES() \
  if (!first_ || !second_) GTEST_FAIL() << "no store"

TEST_P(SharedModelsTest, TheSecondReplicaLoadsTheFirstsModelsAndAnswersTheSame) {
  REQUIRE_STORES();
  RecommendationService reco_a(RecommendOptions{}, test_holder_options());
  RecommendationService reco_b(RecommendOptions{}, test_holder_options());
  UpgradeTimingService timing_a(UpgradeTimingOptions{}, test_holder_options());
  UpgradeTimingService timing_b(UpgradeTimingOptions{}, test_holder_options());

  const json recs_a = recommendations_of(reco_a, *first_, clock_);
  const json timings_a = timings_of(timing_a, *first_, clock_);
  EXPECT_EQ(reco_a.trainings(), 1);
  EXPECT_EQ(timing_a.trainings(), 1);
  clock_.advance(600);  // the second replica asks ten minutes later
  const json recs_b = recommendations_of(reco_b, *second_, clock_);
  const json timings_b = timings_of(timing_b, *second_, clock_);
  EXPECT_EQ(reco_b.trainings(), 0) << "the second replica trained instead of loading";
  EXPECT_EQ(timing_b.trainings(), 0) << "the second replica trained instead of loading";
  EXPECT_EQ(recs_a, recs_b);
  EXPECT_EQ(timings_a, timings_b);

  ASSERT_TRUE(reco_b.served() && timing_b.served());
  EXPECT_EQ(reco_b.served()->source, "loaded");
  EXPECT_EQ(reco_b.served()->content_sha256, reco_a.served()->content_sha256);
  EXPECT_EQ(reco_b.served()->trained_at, kEnd);
  EXPECT_EQ(timing_b.served()->source, "loaded");
  EXPECT_EQ(timing_b.served()->content_sha256, timing_a.served()->content_sha256);

  // The stored documents: one per model, the metadata readable, the hash the served one.
  for (const char* name : {"recommendations", "upgrade_timing"}) {
    auto doc = second_->get_document(kTrainedModelKind, name);
    ASSERT_TRUE(doc.is_ok() && doc->has_value()) << name;
    auto stored = parse_stored_model_body((*doc)->body);
    ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
    EXPECT_EQ(stored->trained_at, kEnd);
    EXPECT_EQ(stored->content_sha256, sha256_hex(stored->payload));
  }
}

TEST_P(SharedModelsTest, ACorruptedStoredModelIsRefusedRetrainedAndOverwritten) {
  REQUIRE_STORES();
  RecommendationService reco_a(RecommendOptions{}, test_holder_options());
  UpgradeTimingService timing_a(UpgradeTimingOptions{}, test_holder_options());
  ASSERT_TRUE(reco_a.fresh_model(*first_, clock_).is_ok());
  ASSERT_TRUE(timing_a.fresh_model(*first_, clock_).is_ok());
  corrupt_stored("recommendations");
  corrupt_stored("upgrade_timing");

  std::vector<std::string> log;
  RecommendationService reco_b(RecommendOptions{}, test_holder_options(&log));
  UpgradeTimingService timing_b(UpgradeTimingOptions{}, test_holder_options(&log));
  clock_.advance(60);
  ASSERT_TRUE(reco_b.fresh_model(*second_, clock_).is_ok());
  ASSERT_TRUE(timing_b.fresh_model(*second_, clock_).is_ok());
  EXPECT_EQ(reco_b.trainings(), 1);
  EXPECT_EQ(timing_b.trainings(), 1);
  ASSERT_EQ(log.size(), 2u);
  for (const auto& line : log) {
    EXPECT_NE(line.find("refusing the stored model (content hash mismatch"), std::string::npos)
        << line;
  }
  // The record was overwritten with the retrained model, which a third replica loads.
  RecommendationService reco_c(RecommendOptions{}, test_holder_options());
  UpgradeTimingService timing_c(UpgradeTimingOptions{}, test_holder_options());
  ASSERT_TRUE(reco_c.fresh_model(*first_, clock_).is_ok());
  ASSERT_TRUE(timing_c.fresh_model(*first_, clock_).is_ok());
  EXPECT_EQ(reco_c.trainings(), 0);
  EXPECT_EQ(timing_c.trainings(), 0);
  EXPECT_EQ(reco_c.served()->content_sha256, reco_b.served()->content_sha256);
  EXPECT_EQ(reco_c.served()->trained_at, kEnd + 60);
}

TEST_P(SharedModelsTest, AModelOfOtherTrainingOptionsIsNotUsed) {
  REQUIRE_STORES();
  RecommendationService reco_a(RecommendOptions{}, test_holder_options());
  ASSERT_TRUE(reco_a.fresh_model(*first_, clock_).is_ok());
  RecommendOptions other;
  other.ease_lambda = 50.0;
  ASSERT_NE(recommend_options_fingerprint(other), recommend_options_fingerprint({}));
  std::vector<std::string> log;
  RecommendationService reco_b(other, test_holder_options(&log));
  auto model = reco_b.fresh_model(*second_, clock_);
  ASSERT_TRUE(model.is_ok());
  EXPECT_EQ(reco_b.trainings(), 1);
  EXPECT_EQ((*model)->ease_lambda(), 50.0);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("trained with other options"), std::string::npos) << log[0];

  UpgradeTimingService timing_a(UpgradeTimingOptions{}, test_holder_options());
  ASSERT_TRUE(timing_a.fresh_model(*first_, clock_).is_ok());
  UpgradeTimingOptions other_timing;
  other_timing.propensity.l2 = 3.0;
  UpgradeTimingService timing_b(other_timing, test_holder_options(&log));
  ASSERT_TRUE(timing_b.fresh_model(*second_, clock_).is_ok());
  EXPECT_EQ(timing_b.trainings(), 1);
}

TEST_P(SharedModelsTest, ALoadedModelScoresBitForBitAsTheStoredOne) {
  REQUIRE_STORES();
  RecommendationService reco_a(RecommendOptions{}, test_holder_options());
  UpgradeTimingService timing_a(UpgradeTimingOptions{}, test_holder_options());
  auto trained = reco_a.fresh_model(*first_, clock_);
  auto trained_timing = timing_a.fresh_model(*first_, clock_);
  ASSERT_TRUE(trained.is_ok() && trained_timing.is_ok());
  RecommendationService reco_b(RecommendOptions{}, test_holder_options());
  UpgradeTimingService timing_b(UpgradeTimingOptions{}, test_holder_options());
  auto loaded = reco_b.fresh_model(*second_, clock_);
  auto loaded_timing = timing_b.fresh_model(*second_, clock_);
  ASSERT_TRUE(loaded.is_ok() && loaded_timing.is_ok());
  ASSERT_EQ(reco_b.trainings() + timing_b.trainings(), 0);
  const RecommendationModel& a = **trained;
  const RecommendationModel& b = **loaded;

  // Every user's every recommendation: the same features, types and exactly equal scores.
  ASSERT_EQ(a.user_ids(), b.user_ids());
  std::size_t compared = 0;
  for (const std::string& user : a.user_ids()) {
    auto ra = a.recommend(user), rb = b.recommend(user);
    ASSERT_TRUE(ra.is_ok() && rb.is_ok());
    ASSERT_EQ(ra->size(), rb->size()) << user;
    for (std::size_t i = 0; i < ra->size(); ++i) {
      EXPECT_EQ((*ra)[i].recommendation_id, (*rb)[i].recommendation_id);
      EXPECT_EQ((*ra)[i].feature_name, (*rb)[i].feature_name);
      // Bit-identical, not approximately equal.
      EXPECT_EQ(std::bit_cast<std::uint64_t>((*ra)[i].confidence_score),
                std::bit_cast<std::uint64_t>((*rb)[i].confidence_score));
      EXPECT_EQ((*ra)[i].expected_value.minor_units, (*rb)[i].expected_value.minor_units);
      ++compared;
    }
  }
  EXPECT_GT(compared, 1000u);
  EXPECT_TRUE((a.ease_weights().array() == b.ease_weights().array()).all());
  EXPECT_EQ(a.serialize(), b.serialize());

  const UpgradeTimingModel& ta = **trained_timing;
  const UpgradeTimingModel& tb = **loaded_timing;
  EXPECT_EQ(ta.serialize(), tb.serialize());
  UsageLoadOptions window = upgrade_history_window(kEnd, UpgradeTimingOptions{});
  auto history = UsageHistory::load(*first_, window);
  ASSERT_TRUE(history.is_ok());
  for (const auto& user : sample_users_) {
    auto x = ta.timing_for(*history, user), y = tb.timing_for(*history, user);
    ASSERT_TRUE(x.is_ok() && y.is_ok()) << user;
    EXPECT_EQ(std::bit_cast<std::uint64_t>(x->confidence_score),
              std::bit_cast<std::uint64_t>(y->confidence_score));
    EXPECT_EQ(std::bit_cast<std::uint64_t>(x->propensity_today),
              std::bit_cast<std::uint64_t>(y->propensity_today));
    EXPECT_EQ(x->to_json(), y->to_json());
  }
}

TEST_P(SharedModelsTest, TwoReplicasStartingAtOnceTrainOnce) {
  REQUIRE_STORES();
  RecommendationService reco_a(RecommendOptions{}, test_holder_options());
  RecommendationService reco_b(RecommendOptions{}, test_holder_options());
  Result<std::shared_ptr<const RecommendationModel>> a = internal_error("not run"),
                                                     b = internal_error("not run");
  std::thread replica_a([&] { a = reco_a.fresh_model(*first_, clock_); });
  std::thread replica_b([&] { b = reco_b.fresh_model(*second_, clock_); });
  replica_a.join();
  replica_b.join();
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  // One trained under the training lease, the other waited for its model and loaded it.
  EXPECT_EQ(reco_a.trainings() + reco_b.trainings(), 1);
  EXPECT_EQ(reco_a.served()->content_sha256, reco_b.served()->content_sha256);
  // The lease was released after the training.
  auto lease = first_->acquire_job_lease("model_training:recommendations", "training", "probe",
                                         kEnd, kEnd + 60);
  ASSERT_TRUE(lease.is_ok());
  EXPECT_EQ(*lease, JobLeaseOutcome::kAcquired);
}

INSTANTIATE_TEST_SUITE_P(Backends, SharedModelsTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fulcrum
