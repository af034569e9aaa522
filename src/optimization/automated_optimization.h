// AutomatedOptimization: the seed's library face (api-contract.md, "The library face") over
// one Store. It owns what must be shared between calls: the trained recommendation and
// upgrade-timing models (retrained when older than a day) and the dashboard's cached
// sections, so the HTTP server and the Python package serve the same models and the same
// figures. Every operation returns Result (kInvalidArgument naming the field, kNotFound,
// kFailedPrecondition) and is safe to call from several threads at once.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "experiments/experiment.h"
#include "experiments/service.h"
#include "lifecycle/retention_campaigns.h"
#include "lifecycle/upgrade_timing.h"
#include "optimization/dashboard.h"
#include "recommend/recommendations.h"
#include "store/store.h"
#include "sunset/sunset.h"

namespace fulcrum {

struct OptimizationOptions {
  RecommendOptions recommend;
  UpgradeTimingOptions upgrade_timing;
  RetentionCampaignConfig retention;
  SunsetConfig sunset;
  UnixSeconds max_model_age = kSecondsPerDay;  // models are retrained when older (clock time)
  // Dashboard sections older than this are recomputed in the background while the cached
  // one is served (the first call computes them in the foreground).
  std::chrono::milliseconds dashboard_max_age{60'000};
};

class AutomatedOptimization {
 public:
  AutomatedOptimization(Store& store, const Clock& clock, OptimizationOptions options = {});
  ~AutomatedOptimization();
  AutomatedOptimization(const AutomatedOptimization&) = delete;
  AutomatedOptimization& operator=(const AutomatedOptimization&) = delete;

  Store& store() { return store_; }
  const Clock& clock() const { return clock_; }
  const OptimizationOptions& options() const { return options_; }

  // A/B tests: the contract's create request (experiments/service.h), a draft test.
  Result<experiments::Experiment> create_ab_test(const nlohmann::json& request);
  Result<experiments::Experiment> start_ab_test(const std::string& test_id);
  // The results document (experiments/results.cc), with the options of the results route
  // (slices, post-stratification, CUPAC).
  Result<nlohmann::json> analyze_ab_test_results(const std::string& test_id,
                                                 const experiments::ResultsOptions& options = {});

  // Ranked recommendations from the shared model (trained on first use).
  Result<std::vector<FeatureRecommendation>> generate_feature_recommendations(
      const std::string& user_id);
  Result<UpgradeTiming> optimize_upgrade_timing(const std::string& user_id);
  // Runs the five triggers now and stores the new campaigns.
  Result<std::vector<RetentionCampaign>> trigger_retention_campaigns();
  Result<std::vector<RetentionCampaign>> list_retention_campaigns(const std::string& status = "");
  Result<std::vector<FeatureSunsetAnalysis>> analyze_feature_sunset();

  // GET /dashboard: A/B tests, recommendations, upgrade timing, retention campaigns and
  // feature sunset in one document (see dashboard.h for its shape).
  Result<nlohmann::json> dashboard();
  // Tells the dashboard that a write elsewhere (e.g. an A/B test lifecycle route) changed a
  // section: the next dashboard() recomputes it.
  void dashboard_changed(DashboardSection section);

  RecommendationService& recommendation_service() { return recommendations_; }
  UpgradeTimingService& upgrade_timing_service() { return upgrade_timing_; }
  // The models this process serves now (none before their first use).
  std::vector<ServedModel> served_models() const;

 private:
  Store& store_;
  const Clock& clock_;
  OptimizationOptions options_;
  RecommendationService recommendations_;
  UpgradeTimingService upgrade_timing_;
  std::unique_ptr<DashboardCache> dashboard_;
};

}  // namespace fulcrum
