// Measured outcomes of past recommendations: a model trained one window ago (at
// now - window, on the events before it) recommends to every user who existed then, and the
// following window shows which recommendations were acted on, by the same rule the
// calibration uses (recommendation_model.h): the feature was used in the window after the
// recommendation, or, for usage_optimization, used more than in the window before it.
// Out of sample by construction, so the confidence bins are an honest calibration curve
// (predicted confidence vs observed rate) of the model as it is served.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/status.h"
#include "recommend/recommendation_model.h"

namespace fulcrum {

struct RecommendationOutcomes {
  UnixSeconds recommended_at = 0;  // now - window
  UnixSeconds observed_until = 0;  // now
  struct Tally {
    std::int64_t recommendations = 0;
    std::int64_t acted_on = 0;
    double mean_confidence = 0;  // the model's predicted rate for the same recommendations
  };
  std::array<Tally, kRecommendationTypeCount> by_type;
  Tally overall;
  struct Bin {
    double lower = 0, upper = 0;  // confidence range [lower, upper)
    std::int64_t recommendations = 0, acted_on = 0;
    double mean_confidence = 0;
  };
  static constexpr int kBins = 10;
  std::vector<Bin> calibration;  // kBins equal-width bins of confidence_score, all types

  nlohmann::json to_json() const;
};

Result<RecommendationOutcomes> measure_recommendation_outcomes(
    const UsageHistory& history, UnixSeconds now, const RecommendOptions& options = {});

}  // namespace fulcrum
