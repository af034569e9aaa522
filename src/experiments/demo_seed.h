// Demo experiments matching the events the demo generator (src/demo) writes: the documents
// for "exp_onboarding_checklist" (control/variant 50/50; conversion_rate binomial primary,
// revenue_per_user continuous) and "exp_savings_nudge" (control/nudge_a/nudge_b equal;
// savings_goal_created binomial), both active and started when the generator's exposure
// windows open: 30 and 45 days before clock.now() (pass the demo data's end, e.g. a
// ManualClock at Store::latest_event_time()).
// Idempotent: tests that already exist are left alone.
#pragma once

#include "core/time.h"
#include "store/store.h"

namespace fulcrum::experiments {

inline constexpr const char* kDemoOnboardingTest = "exp_onboarding_checklist";
inline constexpr const char* kDemoSavingsNudgeTest = "exp_savings_nudge";

// Returns how many experiments were created (0 when all existed).
Result<int> seed_demo_experiments(Store& store, const Clock& clock);

}  // namespace fulcrum::experiments
