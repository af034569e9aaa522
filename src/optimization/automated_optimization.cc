#include "optimization/automated_optimization.h"

#include "experiments/service.h"
#include "optimization/dashboard.h"

namespace fulcrum {

AutomatedOptimization::AutomatedOptimization(Store& store, const Clock& clock,
                                             OptimizationOptions options)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      recommendations_(options_.recommend, options_.max_model_age),
      upgrade_timing_(options_.upgrade_timing, options_.max_model_age),
      dashboard_(std::make_unique<DashboardCache>(*this, options_.dashboard_max_age)) {}

AutomatedOptimization::~AutomatedOptimization() = default;

Result<experiments::Experiment> AutomatedOptimization::create_ab_test(
    const nlohmann::json& request) {
  auto created = experiments::create_ab_test(store_, clock_, request);
  if (created.is_ok()) dashboard_->invalidate(DashboardSection::kAbTests);
  return created;
}

Result<experiments::Experiment> AutomatedOptimization::start_ab_test(const std::string& test_id) {
  auto started = experiments::start_ab_test(store_, clock_, test_id);
  if (started.is_ok()) dashboard_->invalidate(DashboardSection::kAbTests);
  return started;
}

Result<nlohmann::json> AutomatedOptimization::analyze_ab_test_results(
    const std::string& test_id, const experiments::ResultsOptions& options) {
  return experiments::analyze_ab_test_results(store_, clock_, test_id, options);
}

Result<std::vector<FeatureRecommendation>> AutomatedOptimization::generate_feature_recommendations(
    const std::string& user_id) {
  return recommendations_.for_user(store_, clock_, user_id);
}

Result<UpgradeTiming> AutomatedOptimization::optimize_upgrade_timing(const std::string& user_id) {
  return upgrade_timing_.for_user(store_, clock_, user_id);
}

Result<std::vector<RetentionCampaign>> AutomatedOptimization::trigger_retention_campaigns() {
  auto created = fulcrum::trigger_retention_campaigns(store_, clock_, options_.retention);
  if (created.is_ok()) dashboard_->invalidate(DashboardSection::kRetention);
  return created;
}

Result<std::vector<RetentionCampaign>> AutomatedOptimization::list_retention_campaigns(
    const std::string& status) {
  return list_campaigns(store_, status);
}

Result<std::vector<FeatureSunsetAnalysis>> AutomatedOptimization::analyze_feature_sunset() {
  return fulcrum::analyze_feature_sunset(store_, clock_, options_.sunset);
}

Result<nlohmann::json> AutomatedOptimization::dashboard() { return dashboard_->document(); }

void AutomatedOptimization::dashboard_changed(DashboardSection section) {
  dashboard_->invalidate(section);
}

std::vector<ServedModel> AutomatedOptimization::served_models() const {
  std::vector<ServedModel> served;
  if (auto model = recommendations_.served()) served.push_back(*model);
  if (auto model = upgrade_timing_.served()) served.push_back(*model);
  return served;
}

}  // namespace fulcrum
