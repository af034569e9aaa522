#include "stats/quantile.h"

#include <algorithm>
#include <cmath>

#include "stats/capping.h"
#include "stats/distributions.h"

namespace fulcrum::stats {
namespace {

// GrowthBook's N_STAR_VALUES: 100 * 2^k, k = 0..19.
std::int64_t n_star_for(std::int64_t n) {
  std::int64_t n_star = 100;
  for (std::int64_t candidate = 100; candidate <= 52428800; candidate *= 2) {
    if (candidate < n) n_star = candidate;
  }
  return n_star;
}

}  // namespace

Result<QuantileSummary> summarize_quantile(std::vector<double> values, double level) {
  if (!(level > 0 && level < 1)) {
    return invalid_argument("the quantile level must be in (0, 1), e.g. 0.9 for p90", "quantile");
  }
  if (values.empty()) return invalid_argument("no values", "values");
  for (double value : values) {
    if (!std::isfinite(value)) return invalid_argument("values must be finite", "values");
  }
  std::sort(values.begin(), values.end());
  QuantileSummary summary;
  summary.n = static_cast<std::int64_t>(values.size());
  summary.n_star = n_star_for(summary.n);
  summary.level = level;
  summary.quantile = sample_quantile_sorted(values, level);
  // getQuantileBoundValues (GrowthBook back end): levels clamped to [1e-8, 1 - 1e-8].
  const double z = detail::normal_quantile(0.975);
  const double binomial_se = std::sqrt(level * (1 - level) / static_cast<double>(summary.n_star));
  const double lower_level = std::max(level - z * binomial_se, 0.00000001);
  const double upper_level = std::min(level + z * binomial_se, 0.99999999);
  summary.lower = sample_quantile_sorted(values, lower_level);
  summary.upper = sample_quantile_sorted(values, upper_level);
  return summary;
}

Result<GroupEstimate> quantile_estimate(const QuantileSummary& summary) {
  const double z = detail::normal_quantile(0.975);
  const double n = static_cast<double>(summary.n);
  const double nu = summary.level;
  if (!(nu > 0 && nu < 1)) return invalid_argument("must be in (0, 1)", "quantile");
  // The interval of ranks nu n -/+ z sqrt(nu (1 - nu) n) must stay inside the sample.
  if (n <= z * z * nu / (1 - nu) || n <= z * z * (1 - nu) / nu) {
    return invalid_argument("too few values for an interval at this quantile level", "values");
  }
  const double half_spread = (summary.upper - summary.lower) / (2 * z);
  double variance = static_cast<double>(summary.n_star) / n * (n - 1) * half_spread * half_spread;
  // gbstats' _has_zero_variance refuses a zero spread only below 1000 values; from there on
  // the 1e-5 floor stands in (ties are common in integer-valued metrics at large n).
  if (!(variance > 0) && summary.n < 1000) {
    return invalid_argument(
        "the values around the quantile are all equal, so its interval has no width", "values");
  }
  if (summary.n >= 100) variance = std::max(variance, 1e-5);
  return GroupEstimate{summary.quantile, variance, summary.n};
}

}  // namespace fulcrum::stats
