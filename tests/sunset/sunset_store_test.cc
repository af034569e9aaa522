// End to end through the SQLite store: a small generated dataset with a planted
// declining feature and a planted growing one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "store/store.h"
#include "sunset/sunset.h"

namespace fulcrum {
namespace {

constexpr UnixSeconds kNow = 1'700'006'400;  // a day boundary does not matter: weeks align to now
constexpr UnixSeconds kWeek = 7 * kSecondsPerDay;

class SunsetStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("fulcrum_sunset_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto store = open_store((directory_ / "store.db").string());
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }
  std::filesystem::path directory_;
  std::unique_ptr<Store> store_;
};

Feature make_feature(const std::string& name, std::int64_t cost_minor,
                     const std::string& category) {
  Feature feature;
  feature.name = name;
  feature.monthly_maintenance_cost_minor = cost_minor;
  feature.category = category;
  return feature;
}

// 1000 users active every week; legacy_statements used by a pool shrinking
// ~6%/week from 12% of users, instant_savings by a pool growing from 2% by ~1.2
// points/week, and the core features steadily by large shares. Paying users
// pay 9.99 monthly.
EventBatch generated_dataset() {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(0, 1);
  EventBatch batch;
  batch.features = {make_feature("legacy_statements", 800'00, "statements"),
                    make_feature("e_statements", 200'00, "statements"),
                    make_feature("instant_savings", 400'00, "savings"),
                    make_feature("transfers", 300'00, "payments"),
                    make_feature("budgets", 150'00, "planning")};
  const int users = 1000;
  for (int u = 0; u < users; ++u) {
    User user;
    user.user_id = "u" + std::to_string(u);
    user.tier = u % 5 == 0 ? Tier::kPlus : Tier::kFree;
    user.signup_at = kNow - 200 * kSecondsPerDay;
    batch.users.push_back(user);
    if (user.tier != Tier::kFree) {
      batch.payments.push_back({user.user_id, kNow - 10 * kSecondsPerDay, true, 999});
    }
  }
  for (int w = 0; w < 12; ++w) {
    UnixSeconds week_start = kNow - (12 - w) * kWeek;
    double legacy_share = 0.12 * std::pow(0.94, w);
    double instant_share = 0.02 + 0.012 * w;
    for (int u = 0; u < users; ++u) {
      std::string id = "u" + std::to_string(u);
      UnixSeconds at = week_start + static_cast<UnixSeconds>(uniform(rng) * (kWeek - 1));
      batch.sessions.push_back({id, at, 120});
      batch.feature_usage.push_back({id, "transfers", at, 2});
      if (uniform(rng) < 0.3) batch.feature_usage.push_back({id, "budgets", at, 1});
      // Users with a low index are the legacy/e-statement population, so they
      // co-use.
      double rank = static_cast<double>(u) / users;
      if (rank < legacy_share) batch.feature_usage.push_back({id, "legacy_statements", at, 1});
      if (rank < 0.3) batch.feature_usage.push_back({id, "e_statements", at, 1});
      if (rank > 1 - instant_share) batch.feature_usage.push_back({id, "instant_savings", at, 1});
    }
  }
  return batch;
}

TEST_F(SunsetStoreTest, PlantedDecliningFeatureIsSunsetGrowingOneKept) {
  ASSERT_TRUE(store_->ingest(generated_dataset()).is_ok());
  ManualClock clock(kNow);
  auto result = analyze_feature_sunset(*store_, clock, SunsetConfig{});
  ASSERT_TRUE(result.is_ok()) << result.status().to_string();
  ASSERT_EQ(result->size(), 5u);
  for (const auto& analysis : *result) {
    SCOPED_TRACE(analysis.to_json().dump());
    if (analysis.feature_name == "legacy_statements") {
      EXPECT_EQ(analysis.usage_trend.direction, "declining");
      EXPECT_EQ(analysis.sunset_recommendation, "sunset");
      ASSERT_TRUE(analysis.sunset_date.has_value());
      EXPECT_EQ(analysis.maintenance_cost, Money::from_minor(800'00));
      // Its users are the e_statements population: the top alternative.
      ASSERT_GE(analysis.migration_plan.size(), 2u);
      EXPECT_NE(analysis.migration_plan[1].find("e_statements"), std::string::npos);
      // Dependents: users with rank < 0.12 * 0.94^11 * ... used in >= 2 of the
      // last 4 weeks.
      EXPECT_GT(analysis.current_usage.dependent_users, 0);
      EXPECT_EQ(analysis.revenue_impact,
                Money::from_minor(999 * analysis.current_usage.dependent_paying_users));
    } else {
      EXPECT_NE(analysis.sunset_recommendation, "sunset");
      EXPECT_NE(analysis.sunset_recommendation, "deprecate");
    }
    if (analysis.feature_name == "instant_savings") {
      EXPECT_EQ(analysis.usage_trend.direction, "growing");
      EXPECT_EQ(analysis.sunset_recommendation, "keep");
    }
    if (analysis.feature_name == "transfers") {
      EXPECT_EQ(analysis.current_usage.weekly_active_users, 1000);
      EXPECT_DOUBLE_EQ(analysis.current_usage.share_of_active_users, 1.0);
      EXPECT_EQ(analysis.usage_trend.direction, "stable");
    }
  }
}

TEST_F(SunsetStoreTest, WeeklyCountsAreDistinctUsersInNowAlignedWeeks) {
  EventBatch batch;
  batch.features = {make_feature("f", 0, "x")};
  batch.users.push_back({"a", Tier::kFree, 0, "", "", {}});
  // Three uses by one user in the last week count once; an event exactly at now
  // is out.
  batch.feature_usage = {{"a", "f", kNow - 1, 1},
                         {"a", "f", kNow - kWeek, 1},
                         {"a", "f", kNow - 3 * kSecondsPerDay, 4},
                         {"a", "f", kNow, 1},
                         {"b", "f", kNow - kWeek - 1, 1},
                         {"b", "unknown_feature", kNow - 10, 1}};
  ASSERT_TRUE(store_->ingest(batch).is_ok());
  auto input = load_sunset_input(*store_, kNow, SunsetConfig{});
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  ASSERT_EQ(input->per_feature.size(), 1u);
  const auto& weekly = input->per_feature[0].weekly_users;
  EXPECT_EQ(weekly[11], 1);
  EXPECT_EQ(weekly[10], 1);
  EXPECT_EQ(input->per_feature[0].users_in_window, 2);
  // b used an unknown feature in the last week: active, but not a user of f.
  EXPECT_EQ(input->weekly_active_users_total[11], 2);
}

// A young store: steady daily use that began mid-week 5.5 weeks ago. The weeks before the
// first event are not zeros (which would read as growth); the partial first week is
// skipped too, and with under trend_min_weeks full weeks no trend is claimed.
TEST_F(SunsetStoreTest, TrendIgnoresWeeksBeforeTheDataBegins) {
  auto analyse = [&](int days_of_history) {
    EventBatch batch;
    batch.features = {make_feature("steady", 100'00, "x")};
    for (int user = 0; user < 200; ++user) {
      const std::string id = "u" + std::to_string(user);
      batch.users.push_back({id, Tier::kFree, 0, "", "", {}});
      for (int day = 0; day < days_of_history; ++day) {
        batch.feature_usage.push_back(
            {id, "steady", kNow - kSecondsPerDay / 2 - day * kSecondsPerDay, 1});
      }
    }
    EXPECT_TRUE(store_->ingest(batch).is_ok());
    auto input = load_sunset_input(*store_, kNow, SunsetConfig{});
    EXPECT_TRUE(input.is_ok());
    return std::make_pair(*input, *analyze_feature_sunset(*input, SunsetConfig{}));
  };
  auto [input, analyses] = analyse(38);  // 5 weeks and 3 days
  EXPECT_EQ(input.first_full_week, 7);
  ASSERT_EQ(analyses.size(), 1u);
  EXPECT_EQ(analyses[0].usage_trend.weeks_observed, 5);
  EXPECT_EQ(analyses[0].usage_trend.direction, "stable");
  EXPECT_EQ(analyses[0].sunset_recommendation, "keep");  // all actives use it: core

  SetUp();  // a fresh, empty store
  auto [young_input, young] = analyse(16);
  EXPECT_EQ(young[0].usage_trend.weeks_observed, 2);
  EXPECT_EQ(young[0].usage_trend.direction, "stable");
  EXPECT_NE(std::find(young[0].reasons.begin(), young[0].reasons.end(),
                      "only 2 full weeks of history: trend not assessed"),
            young[0].reasons.end());
}

}  // namespace
}  // namespace fulcrum
