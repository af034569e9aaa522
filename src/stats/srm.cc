#include "stats/srm.h"

#include <cmath>
#include <string>

#include "stats/distributions.h"

namespace fulcrum::stats {

Result<SrmResult> sample_ratio_mismatch(const std::vector<std::int64_t>& observed,
                                        const std::vector<double>& weights, double threshold) {
  if (observed.size() != weights.size()) {
    return invalid_argument("one allocation weight per group is needed", "allocation");
  }
  if (observed.size() < 2) return invalid_argument("at least two groups are needed", "allocation");
  double total = 0, weight_total = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    if (observed[i] < 0) return invalid_argument("counts must not be negative", "n");
    if (!(weights[i] > 0) || !std::isfinite(weights[i])) {
      return invalid_argument("allocation weights must be positive", "allocation");
    }
    total += static_cast<double>(observed[i]);
    weight_total += weights[i];
  }
  SrmResult result;
  result.degrees_of_freedom = static_cast<int>(observed.size()) - 1;
  if (total == 0) return result;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double expected = total * weights[i] / weight_total;
    const double deviation = static_cast<double>(observed[i]) - expected;
    result.expected.push_back(expected);
    result.chi_square += deviation * deviation / expected;
  }
  result.p_value = detail::chi_squared_sf(result.chi_square, result.degrees_of_freedom);
  result.mismatch = result.p_value < threshold;
  return result;
}

}  // namespace fulcrum::stats
