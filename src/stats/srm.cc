#include "stats/srm.h"

#include <algorithm>
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

Result<SequentialSrmResult> sequential_sample_ratio_mismatch(
    const std::vector<std::int64_t>& observed, const std::vector<double>& weights, double threshold,
    double concentration) {
  if (observed.size() != weights.size()) {
    return invalid_argument("one allocation weight per group is needed", "allocation");
  }
  if (observed.size() < 2) return invalid_argument("at least two groups are needed", "allocation");
  if (!(threshold > 0 && threshold < 1)) {
    return invalid_argument("threshold must be in (0, 1)", "threshold");
  }
  if (!(concentration > 0) || !std::isfinite(concentration)) {
    return invalid_argument("concentration must be positive", "concentration");
  }
  double weight_total = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    if (observed[i] < 0) return invalid_argument("counts must not be negative", "n");
    if (!(weights[i] > 0) || !std::isfinite(weights[i])) {
      return invalid_argument("allocation weights must be positive", "allocation");
    }
    weight_total += weights[i];
  }
  // Lindon & Malek (2022), sec. 2, in logs (lgamma) so large counts do not overflow.
  double prior_total = 0, count_total = 0, log_bf = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double theta0 = weights[i] / weight_total;
    const double prior = concentration * theta0;
    const double x = static_cast<double>(observed[i]);
    prior_total += prior;
    count_total += x;
    log_bf += std::lgamma(prior + x) - std::lgamma(prior) - x * std::log(theta0);
  }
  log_bf += std::lgamma(prior_total) - std::lgamma(prior_total + count_total);
  SequentialSrmResult result;
  result.log_bayes_factor = log_bf;
  result.p_value = std::min(1.0, std::exp(-log_bf));
  result.mismatch = log_bf >= -std::log(threshold);
  return result;
}

}  // namespace fulcrum::stats
