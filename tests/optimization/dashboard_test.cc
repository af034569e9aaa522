// The five-section dashboard document on demo data: each section against an independent
// recomputation from the store or the engines' own public calls, and the cache's behaviour.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "demo/demo_data.h"
#include "optimization/automated_optimization.h"
#include "usage/usage_history.h"
#include "recommend/outcomes.h"

namespace fulcrum {
namespace {

using json = nlohmann::json;

class DashboardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = std::filesystem::temp_directory_path() /
                 ("fulcrum_dashboard_" + std::to_string(::getpid()));
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto store = open_store((directory_ / "store.db").string());
    ASSERT_TRUE(store.is_ok());
    store_ = std::move(*store).release();
    demo::DemoOptions options;
    options.users = 2000;
    options.days = 90;  // the upgrade model needs weekly snapshots with upgrades
    options.end = kEnd;
    auto summary = demo::generate_demo_data(
        options, [&](const EventBatch& batch) { return store_->ingest(batch).status(); });
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  }
  static void TearDownTestSuite() {
    delete store_;
    std::filesystem::remove_all(directory_);
  }
  static constexpr UnixSeconds kEnd = 1'735'689'600;  // 2025-01-01
  static inline std::filesystem::path directory_;
  static inline Store* store_ = nullptr;
  ManualClock clock_{kEnd};
};

TEST_F(DashboardTest, FiveSectionsAgreeWithTheEngines) {
  AutomatedOptimization engines(*store_, clock_);
  auto document = engines.dashboard();
  ASSERT_TRUE(document.is_ok()) << document.status().to_string();
  const json& d = *document;
  for (const char* section :
       {"ab_tests", "recommendations", "upgrade_timing", "retention", "sunset"}) {
    ASSERT_TRUE(d.contains(section)) << section;
    ASSERT_FALSE(d[section].contains("error")) << section << ": " << d[section].dump();
  }

  // Recommendations: the counts by type add up, and are what the model serves each user.
  const json& recs = d["recommendations"];
  std::int64_t by_type = 0;
  for (const auto& [type, n] : recs["counts_by_type"].items()) by_type += n.get<std::int64_t>();
  EXPECT_EQ(by_type, recs["recommendations"].get<std::int64_t>());
  EXPECT_GT(by_type, 0);
  auto model = engines.recommendation_service().model();
  ASSERT_NE(model, nullptr);
  std::map<std::string, std::int64_t> served;
  for (const std::string& user : model->user_ids()) {
    for (const auto& r : *model->recommend(user)) ++served[r.feature_name];
  }
  const json& top = recs["top_features"].front();
  EXPECT_EQ(top["recommendations"].get<std::int64_t>(), served[top["feature_name"]]);
  for (const auto& [feature, count] : served) {
    EXPECT_LE(count, top["recommendations"].get<std::int64_t>()) << feature;
  }

  // Upgrade timing: every free user is in the histogram once.
  std::int64_t free_users = 0;
  ASSERT_TRUE(store_->scan_users([&](const User& u) { free_users += u.tier == Tier::kFree; }).is_ok());
  const json& upgrade = d["upgrade_timing"];
  EXPECT_EQ(upgrade["free_users"].get<std::int64_t>(), free_users);
  std::int64_t binned = 0;
  for (const json& bin : upgrade["propensity_histogram"]["bins"]) binned += bin["users"].get<std::int64_t>();
  EXPECT_EQ(binned, free_users);
  EXPECT_GE(upgrade["optimal_this_week"].get<std::int64_t>(), 0);
  EXPECT_LE(upgrade["optimal_this_week"].get<std::int64_t>(), free_users);
  const double auc = upgrade["model"]["evaluation"]["model"]["auc"];
  EXPECT_GT(auc, 0.5);
  const json& best = upgrade["top_candidates"].front();
  auto timing = engines.optimize_upgrade_timing(best["user_id"]);
  ASSERT_TRUE(timing.is_ok());
  EXPECT_NEAR(timing->confidence_score, best["confidence_score"].get<double>(), 1e-4);

  // Sunset: the candidates are the deprecate / sunset analyses, with their money.
  auto analyses = engines.analyze_feature_sunset();
  ASSERT_TRUE(analyses.is_ok());
  std::int64_t at_risk_minor = 0, saved_minor = 0;
  std::set<std::string> candidates;
  for (const auto& a : *analyses) {
    if (a.sunset_recommendation != "sunset" && a.sunset_recommendation != "deprecate") continue;
    candidates.insert(a.feature_name);
    at_risk_minor += a.revenue_impact.minor_units;
    saved_minor += a.maintenance_cost.minor_units;
  }
  std::set<std::string> listed;
  for (const json& c : d["sunset"]["candidates"]) listed.insert(c["feature_name"]);
  EXPECT_EQ(listed, candidates);
  EXPECT_DOUBLE_EQ(d["sunset"]["revenue_at_risk"].get<double>(), at_risk_minor / 100.0);
  EXPECT_DOUBLE_EQ(d["sunset"]["cost_saved"].get<double>(), saved_minor / 100.0);
}

// The acted-on rates against a direct count from the store's feature-usage events.
TEST_F(DashboardTest, RecommendationOutcomesMatchARecountFromTheStore) {
  const RecommendOptions options;
  auto history = UsageHistory::load(*store_, UsageLoadOptions{.to_day = analysis_end_day(kEnd)});
  ASSERT_TRUE(history.is_ok());
  auto outcomes = measure_recommendation_outcomes(*history, kEnd, options);
  ASSERT_TRUE(outcomes.is_ok()) << outcomes.status().to_string();
  const UnixSeconds then = kEnd - options.window_seconds;
  std::map<std::pair<std::string, std::string>, std::int64_t> before, after;
  ASSERT_TRUE(store_->scan_feature_usage({then - options.window_seconds, kEnd},
                                         [&](const FeatureUsageEvent& e) {
                                           auto& into = e.at < then ? before : after;
                                           into[{e.user_id, e.feature}] += e.count;
                                         })
                  .is_ok());
  auto past = RecommendationModel::train(*history, then, options);
  ASSERT_TRUE(past.is_ok());
  std::array<std::int64_t, kRecommendationTypeCount> made{}, acted{};
  ASSERT_TRUE(store_->scan_users([&](const User& user) {
    if (user.signup_at >= then) return;
    auto recs = past->recommend(user.user_id);
    if (!recs.is_ok()) return;
    for (const auto& r : *recs) {
      const auto key = std::make_pair(user.user_id, r.feature_name);
      const std::int64_t later = after.count(key) ? after[key] : 0;
      const std::int64_t earlier = before.count(key) ? before[key] : 0;
      const bool did = r.recommendation_type == RecommendationType::kUsageOptimization
                           ? later > earlier
                           : later > 0;
      ++made[static_cast<int>(r.recommendation_type)];
      acted[static_cast<int>(r.recommendation_type)] += did;
    }
  }).is_ok());
  std::int64_t total = 0;
  for (int t = 0; t < kRecommendationTypeCount; ++t) {
    EXPECT_EQ(outcomes->by_type[t].recommendations, made[t]) << t;
    EXPECT_EQ(outcomes->by_type[t].acted_on, acted[t]) << t;
    total += made[t];
  }
  EXPECT_GT(total, 0);
  std::int64_t in_bins = 0;
  for (const auto& bin : outcomes->calibration) in_bins += bin.recommendations;
  EXPECT_EQ(in_bins, total);
}

TEST_F(DashboardTest, CachedSectionsAreServedAndWritesRecomputeTheirs) {
  OptimizationOptions options;
  options.dashboard_max_age = std::chrono::hours(1);
  AutomatedOptimization engines(*store_, clock_, options);
  auto first = engines.dashboard();
  ASSERT_TRUE(first.is_ok());
  clock_.set(kEnd + 60);
  auto second = engines.dashboard();
  ASSERT_TRUE(second.is_ok());
  // Served from the cache: the same figures, computed at the first call's time.
  EXPECT_EQ((*second)["sunset"], (*first)["sunset"]);
  EXPECT_EQ((*second)["retention"]["computed_at"], (*first)["retention"]["computed_at"]);
  // Triggering campaigns through the facade recomputes the retention section.
  auto created = engines.trigger_retention_campaigns();
  ASSERT_TRUE(created.is_ok());
  auto third = engines.dashboard();
  ASSERT_TRUE(third.is_ok());
  EXPECT_EQ((*third)["retention"]["totals"]["campaigns"].get<std::size_t>(),
            (*first)["retention"]["totals"]["campaigns"].get<std::size_t>() + created->size());
  EXPECT_EQ((*third)["sunset"]["computed_at"], (*first)["sunset"]["computed_at"]);
}

}  // namespace
}  // namespace fulcrum
