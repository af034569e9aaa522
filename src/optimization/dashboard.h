// The dashboard document (GET /dashboard, AutomatedOptimization::dashboard()): five
// sections, each computed from the engines' public results and cached, so a call after
// warm-up is assembling cached JSON:
// {
//   "generated_at",
//   "ab_tests":        {counts_by_status, tests[], results{test_id: results document}},
//   "recommendations": {model_trained_at, ease_lambda (validated), users,
//                       users_with_recommendations,
//                       counts_by_type{type: n}, top_features[{feature_name, recommendations,
//                       by_type, mean_confidence, expected_value_total}],
//                       outcomes{recommended_at, observed_until, by_type{type: {
//                       recommendations, acted_on, acted_on_rate, mean_confidence}}, overall,
//                       calibration[{confidence_from, confidence_to, recommendations,
//                       acted_on, mean_confidence, observed_rate}]}},
//   "upgrade_timing":  {model_trained_at, free_users, optimal_this_week,
//                       propensity_histogram{bin_width, bins[{from, to, users}]},
//                       mean_propensity, model{evaluation: AUC/Brier on the holdout, ...},
//                       top_candidates[{user_id, optimal_upgrade_date, confidence_score,
//                       propensity_today, days_until_optimal}]},
//   "retention":       {campaigns[{..., targeted, held_out, lift, p_value, ...}],
//                       totals{campaigns, targeted, held_out, by_trigger{type: campaigns}}},
//   "sunset":          {features, counts_by_recommendation, candidates[{feature_name,
//                       sunset_recommendation, current_usage, usage_trend, revenue_at_risk,
//                       cost_saved, sunset_date}], revenue_at_risk, cost_saved}
// }
// and each section carries "computed_at" (when its figures were computed). A section whose
// engine failed is {"error": message, "computed_at"}. Money: major units, per month.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/status.h"

namespace fulcrum {

class AutomatedOptimization;

enum class DashboardSection { kAbTests = 0, kRecommendations, kUpgradeTiming, kRetention, kSunset };
inline constexpr int kDashboardSectionCount = 5;
const char* dashboard_section_name(DashboardSection section);

// Computes one section now, from the engines behind `engines` (no cache).
nlohmann::json compute_dashboard_section(AutomatedOptimization& engines, DashboardSection section);

// Cached sections with stale-while-revalidate: a section never computed is computed by the
// caller; one older than max_age is served as is while a background thread recomputes it.
class DashboardCache {
 public:
  DashboardCache(AutomatedOptimization& engines, std::chrono::milliseconds max_age);
  ~DashboardCache();  // stops and joins the background thread
  DashboardCache(const DashboardCache&) = delete;
  DashboardCache& operator=(const DashboardCache&) = delete;

  nlohmann::json document();
  // The next document() recomputes this section in the foreground (after a write through
  // the facade that changes it, e.g. new campaigns).
  void invalidate(DashboardSection section);

 private:
  struct Slot {
    std::optional<nlohmann::json> value;
    std::chrono::steady_clock::time_point computed_at;
    bool refreshing = false;
    std::mutex computing;  // one foreground computation per section at a time
  };
  void refresher();

  AutomatedOptimization& engines_;
  std::chrono::milliseconds max_age_;
  std::array<Slot, kDashboardSectionCount> slots_;
  std::mutex mutex_;  // guards slots_' value/computed_at/refreshing, queue_, stopping_
  std::condition_variable wake_;
  std::deque<int> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace fulcrum
