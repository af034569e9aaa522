// Turns a primary-metric comparison into a plain-language decision: "ship"
// (significant and in the good direction), "stop" (significant harm, or enough
// users collected to reach the target power and still no effect, or a sample
// ratio mismatch that invalidates the data), or "keep_running" (underpowered;
// with the days still needed at the current traffic when known).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "stats/hypothesis.h"

namespace fulcrum::stats {

enum class Action { kShip, kKeepRunning, kStop };
const char* action_name(Action action);  // "ship", "keep_running", "stop"

struct RecommendationInput {
  std::string metric = "the primary metric";
  std::string treatment = "the treatment";
  double p_value = 1;  // after any multiple-comparison adjustment
  double alpha = 0.05;
  EffectTest effect;  // relative lift if available (fraction), else absolute difference
  bool effect_is_relative = true;
  bool higher_is_better = true;
  std::int64_t n_per_group = 0;                 // smallest group so far
  std::optional<double> required_n_per_group;   // for the target power at the target MDE
  std::optional<double> daily_users_per_group;  // current traffic per group
  double target_power = 0.8;
  bool sample_ratio_mismatch = false;
};

struct Recommendation {
  Action action = Action::kKeepRunning;
  std::optional<std::int64_t> days_needed;  // keep_running only, when traffic is known
  std::optional<std::int64_t> additional_users_per_group;
  std::string text;
};

Recommendation recommend(const RecommendationInput& input);

}  // namespace fulcrum::stats
