// Plain sufficient statistics for one experiment group, and the per-group
// estimate every two-sample comparison starts from. Mirrors VariantMetricStats
// (store/model.h) without depending on the store: n = exposed users,
// sum/sum_squares of the per-user metric value, and for CUPED the pre-period
// sums, for ratio metrics numerator/denominator sums.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace fulcrum::stats {

// Per-user metric values y_i: n, sum y_i, sum y_i^2. For binomial metrics y_i
// is 0/1, so sum is the number of conversions (sum_squares == sum).
struct SampleStats {
  std::int64_t n = 0;
  double sum = 0;
  double sum_squares = 0;
};

// CUPED input: post-period metric plus the pre-period covariate x_i of the same
// users.
struct CupedStats {
  SampleStats post;
  double pre_sum = 0;          // sum x_i
  double pre_sum_squares = 0;  // sum x_i^2
  double cross_sum = 0;        // sum x_i * y_i
};

// Ratio metric sum(x)/sum(y) per group (e.g. revenue per session), users are
// the unit.
struct RatioStats {
  std::int64_t n = 0;
  double numerator_sum = 0, numerator_sum_squares = 0;
  double denominator_sum = 0, denominator_sum_squares = 0;
  double cross_sum = 0;  // sum x_i * y_i
};

// A group's point estimate with the per-unit variance of its influence
// function, so the estimator's variance is variance / n (mean: sample variance;
// proportion: p(1-p); ratio: delta-method variance).
struct GroupEstimate {
  double mean = 0;
  double variance = 0;
  std::int64_t n = 0;
};

// Sample mean and sample variance (ddof = 1). Needs n >= 2.
Result<GroupEstimate> mean_estimate(const SampleStats& stats);
// Proportion p = sum/n with Bernoulli variance p(1-p) (ddof = 0). Needs n >= 1,
// 0<=sum<=n.
Result<GroupEstimate> proportion_estimate(const SampleStats& stats);
// Ratio R = sum x / sum y with delta-method variance (Deng et al. 2018,
// "Applying the Delta Method in Metric Analytics", eq. 3; same as GrowthBook's
// RatioStatistic).
Result<GroupEstimate> ratio_estimate(const RatioStats& stats);

}  // namespace fulcrum::stats
