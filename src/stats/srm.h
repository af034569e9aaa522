// Sample ratio mismatch: Pearson chi-square goodness-of-fit of the observed
// exposure counts against the configured allocation weights (=
// scipy.stats.chisquare(observed, expected)). A p-value below 0.001 flags the
// experiment: its assignment or logging is broken, so its results should not be
// trusted (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch").
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace fulcrum::stats {

inline constexpr double kSrmThreshold = 0.001;

struct SrmResult {
  double chi_square = 0;
  int degrees_of_freedom = 0;
  double p_value = 1;
  bool mismatch = false;  // p_value < threshold
  std::vector<double> expected;
};

// `observed[i]` users in group i, `weights[i]` its allocation (any positive
// scale).
Result<SrmResult> sample_ratio_mismatch(const std::vector<std::int64_t>& observed,
                                        const std::vector<double>& weights,
                                        double threshold = kSrmThreshold);

}  // namespace fulcrum::stats
