// Always-valid inference for experiments that are looked at repeatedly (e.g.
// daily). Asymptotic confidence sequence of Waudby-Smith et al. 2023
// ("Time-uniform central limit theory and asymptotic confidence sequences",
// arXiv:2103.06476, eq. 155 for the p-value), as used by GrowthBook
// (SequentialTwoSidedTTest) with a tuning parameter N* (the total sample size
// at which the sequence is tightest; GrowthBook's default 5000):
//   rho   = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N*)
//   s^2   = se^2 * N            (N = total users over both groups)
//   half  = s sqrt(2 (N rho^2 + 1) / (N^2 rho^2) * ln(sqrt(N rho^2 + 1) /
//   alpha)) p     = min(1, sqrt(N rho^2 + 1) * exp(-N^2 rho^2 estimate^2 / (2
//   s^2 (N rho^2 + 1))))
// p < alpha exactly when the sequence excludes 0. The sequence holds
// simultaneously for all N, so stopping at the first look that excludes 0 keeps
// the error rate <= alpha.
#pragma once

#include <cstdint>

#include "stats/hypothesis.h"

namespace fulcrum::stats {

inline constexpr double kDefaultSequentialTuning = 5000;

// Half-width of the two-sided confidence sequence for per-unit variance s2 at
// total_n users (Waudby-Smith et al. eq. 9; gbstats sequential_interval_halfwidth).
double sequential_halfwidth(double s_squared, double total_n, double alpha, double tuning);

// Replaces the interval and p-value of a fixed-horizon test by the always-valid
// ones. `total_n` is the number of users in both groups together.
Result<EffectTest> sequential_test(const EffectTest& fixed_horizon, std::int64_t total_n,
                                   double alpha, double tuning = kDefaultSequentialTuning);

}  // namespace fulcrum::stats
