// CUPED variance reduction (Deng, Xu, Kohavi & Walker 2013, "Improving the
// Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment
// Data", sec. 3.2): with the pre-period value x of each user as covariate,
// theta = cov(x, y) / var(x) computed on all groups pooled (so the same
// adjustment applies to every group and the difference stays unbiased), each
// group's adjusted mean is  mean(y) - theta (mean_g(x) - mean_all(x))  and its
// per-user variance  var(y) + theta^2 var(x) - 2 theta cov(x, y)  within the
// group, which is var(y)(1 - rho^2) at the optimal theta. The shared theta and
// pooled mean(x) are treated as constants (their estimation error is O(1/n), as
// in the paper).
#pragma once

#include <vector>

#include "stats/hypothesis.h"

namespace fulcrum::stats {

struct CupedAdjustment {
  double theta = 0;
  std::vector<GroupEstimate> adjusted;    // same order as the input groups
  std::vector<GroupEstimate> unadjusted;  // plain mean / sample variance of y
};

Result<CupedAdjustment> cuped_adjust(const std::vector<CupedStats>& groups);

// Welch comparison of the CUPED-adjusted means of two groups (theta pooled over
// both).
Result<Comparison> compare_cuped(const CupedStats& control, const CupedStats& treatment,
                                 double alpha);

}  // namespace fulcrum::stats
