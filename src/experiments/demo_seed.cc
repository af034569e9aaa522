#include "experiments/demo_seed.h"

#include <nlohmann/json.hpp>

#include "experiments/service.h"

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

const json& onboarding_request() {
  static const json request = json::parse(R"({
    "test_name": "Onboarding checklist",
    "feature_name": "onboarding_checklist",
    "description": "A guided checklist on the home screen for new users",
    "hypothesis": "A checklist will raise first-month conversion to a paid tier by 10%",
    "success_metrics": ["conversion_rate", "revenue_per_user"],
    "metric_types": {"conversion_rate": "binomial", "revenue_per_user": "continuous"},
    "metric_capping": {"revenue_per_user": {"type": "percentile", "value": 0.99}},
    "test_groups": {"control": {"checklist": false}, "variant": {"checklist": true}},
    "traffic_allocation": {"control": 0.5, "variant": 0.5},
    "created_by": "demo"
  })");
  return request;
}

const json& savings_request() {
  static const json request = json::parse(R"({
    "test_name": "Savings goal nudge",
    "feature_name": "savings_goals",
    "description": "Two nudges prompting users to create a savings goal",
    "hypothesis": "A nudge after payday increases savings goals created",
    "success_metrics": ["savings_goal_created"],
    "metric_types": {"savings_goal_created": "binomial"},
    "test_groups": {"control": {"nudge": "none"},
                    "nudge_a": {"nudge": "payday_banner"},
                    "nudge_b": {"nudge": "push_notification"}},
    "traffic_allocation": {"control": 0.3333333333333333, "nudge_a": 0.3333333333333333,
                           "nudge_b": 0.3333333333333334},
    "created_by": "demo"
  })");
  return request;
}

}  // namespace

Result<int> seed_demo_experiments(Store& store, const Clock& clock) {
  int created = 0;
  // Start dates match the demo generator's exposure windows (src/demo/demo_data.cc: 30 days
  // for the onboarding checklist, 45 for the savings nudge, ending at the data's last day).
  struct Seed {
    const char* id;
    const nlohmann::json* request;
    int days_running;
  };
  for (const Seed& seed : {Seed{kDemoOnboardingTest, &onboarding_request(), 30},
                           Seed{kDemoSavingsNudgeTest, &savings_request(), 45}}) {
    const char* id = seed.id;
    const nlohmann::json* request = seed.request;
    const ManualClock started(clock.now() - seed.days_running * kSecondsPerDay);
    auto existing = store.get_document(kDocumentKind, id);
    if (!existing) return existing.status();
    if (existing->has_value()) continue;
    auto made = create_ab_test_with_id(store, started, id, *request);
    if (!made) return made.status();
    auto active = start_ab_test(store, started, id);
    if (!active) return active.status();
    ++created;
  }
  return created;
}

}  // namespace fulcrum::experiments
