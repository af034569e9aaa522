// The store-facing API: load from a real SQLite store, train once, serve many users.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "recommend/recommendations.h"
#include "recommend/synthetic.h"

namespace fulcrum {
namespace {

class RecommendationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("reco_service_" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path_);
    auto store = open_store(path_.string());
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
    SyntheticUsageOptions options;
    options.users = 300;
    history_ = make_synthetic_usage(options);
    ASSERT_TRUE(store_->ingest(history_).is_ok());
    now_ = options.start + options.days * kSecondsPerDay;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove(path_);
  }
  std::filesystem::path path_;
  std::unique_ptr<Store> store_;
  EventBatch history_;
  UnixSeconds now_ = 0;
};

TEST_F(RecommendationServiceTest, OneShotMatchesServiceAndUnknownUserIsNotFound) {
  ManualClock clock(now_);
  const std::string user_id = history_.users[3].user_id;
  auto one_shot = generate_feature_recommendations(*store_, clock, user_id);
  ASSERT_TRUE(one_shot.is_ok()) << one_shot.status().to_string();
  RecommendationService service;
  auto served = service.for_user(*store_, clock, user_id);
  ASSERT_TRUE(served.is_ok());
  EXPECT_EQ(recommendations_to_json(*one_shot), recommendations_to_json(*served));
  auto missing = generate_feature_recommendations(*store_, clock, "ghost");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service.for_user(*store_, clock, "ghost").status().code(), StatusCode::kNotFound);
}

TEST_F(RecommendationServiceTest, TrainsOnceRetrainsWhenStaleAndServesNewUsers) {
  ManualClock clock(now_);
  RecommendationService service(RecommendOptions{}, /*max_model_age=*/3600);
  ASSERT_TRUE(service.for_user(*store_, clock, history_.users[0].user_id).is_ok());
  auto first = service.model();
  ASSERT_TRUE(first);
  ASSERT_TRUE(service.for_user(*store_, clock, history_.users[1].user_id).is_ok());
  EXPECT_EQ(service.model(), first) << "fresh model must be reused";

  EventBatch joined;
  User newcomer;
  newcomer.user_id = "newcomer";
  newcomer.signup_at = now_;
  joined.users.push_back(newcomer);
  ASSERT_TRUE(store_->ingest(joined).is_ok());
  auto cold = service.for_user(*store_, clock, "newcomer");
  ASSERT_TRUE(cold.is_ok()) << cold.status().to_string();
  EXPECT_FALSE(cold->empty());

  clock.advance(7200);
  ASSERT_TRUE(service.for_user(*store_, clock, history_.users[1].user_id).is_ok());
  EXPECT_NE(service.model(), first);
  EXPECT_EQ(service.model()->trained_at(), now_ + 7200);
}

TEST_F(RecommendationServiceTest, ConcurrentReadersDuringRefresh) {
  ManualClock clock(now_);
  RecommendationService service;
  ASSERT_TRUE(service.refresh(*store_, now_).is_ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = service.for_user(*store_, clock, history_.users[(t * 50 + i) % 300].user_id);
        if (!r.is_ok()) failures++;
      }
    });
  }
  ASSERT_TRUE(service.refresh(*store_, now_).is_ok());
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace fulcrum
