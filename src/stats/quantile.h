// Quantile metrics (p50/p90/p99 of a per-user value), with the interval method of GrowthBook
// (gbstats QuantileStatistic, and the back end's quantile bounds): the sample quantile q at
// level nu, and the sample quantiles at nu -/+ z_{0.975} sqrt(nu (1 - nu) / n*) (the normal
// approximation to the binomial count of values below the quantile), where n* is the largest
// of 100, 200, 400, ... below n. Their spread gives the per-unit variance
//   (n* / n) (n - 1) ((upper - lower) / (2 z_{0.975}))^2,
// floored at 1e-5 from n >= 100, so the two-sample test and the relative lift run exactly as
// for means (Welch df on variance / n).
#pragma once

#include <cstdint>
#include <vector>

#include "stats/sample_stats.h"

namespace fulcrum::stats {

struct QuantileSummary {
  std::int64_t n = 0;
  std::int64_t n_star = 0;
  double level = 0.5;   // nu
  double quantile = 0;  // sample quantile at nu
  double lower = 0;     // sample quantile at the lower level
  double upper = 0;     // sample quantile at the upper level
};

// The summary from raw values (any order). Errors: "quantile" outside (0, 1); "values" not
// finite or empty.
Result<QuantileSummary> summarize_quantile(std::vector<double> values, double level);

// gbstats' estimate from a summary: mean = the quantile, variance as above, n. Errors when
// the interval is degenerate (too few values for this level, or lower == upper), as gbstats'
// _has_zero_variance.
Result<GroupEstimate> quantile_estimate(const QuantileSummary& summary);

}  // namespace fulcrum::stats
