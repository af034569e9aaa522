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

// CUPED for ratio metrics (gbstats RegressionAdjustedRatioStatistic): the post-period ratio
// M/D is adjusted by the pre-period ratio M'/D' of the same users,
//   adjusted = M/D - theta M'/D',
// with the delta-method variance g' Lambda g over the 4x4 covariance Lambda of the per-user
// (M, D, M', D') and gradient g = (1/D, -M/D^2, -theta/D', theta M'/D'^2) at the means, and
// theta = -(c_a + c_b) / (v_a + v_b) from the two groups' pre-period variance v and
// post-pre covariance c of the ratios (gbstats compute_theta_regression_adjusted_ratio).
// The relative lift (adjusted_b - adjusted_a) / |M_a/D_a| uses gbstats'
// frequentist_variance_relative_cuped_ratio.
struct RatioCupedStats {
  std::int64_t n = 0;
  // Post period: numerator M and denominator D; pre period: M' and D'.
  double numerator_sum = 0, numerator_sum_squares = 0;
  double denominator_sum = 0, denominator_sum_squares = 0;
  double pre_numerator_sum = 0, pre_numerator_sum_squares = 0;
  double pre_denominator_sum = 0, pre_denominator_sum_squares = 0;
  // Sums of per-user products.
  double numerator_denominator = 0;          // M D
  double numerator_pre_numerator = 0;        // M M'
  double denominator_pre_denominator = 0;    // D D'
  double pre_numerator_pre_denominator = 0;  // M' D'
  double numerator_pre_denominator = 0;      // M D'
  double denominator_pre_numerator = 0;      // D M'
};

struct RatioCupedComparison {
  double theta = 0;
  GroupEstimate control, treatment;  // adjusted ratio, delta-method variance, n
  Comparison comparison;             // Welch df on the adjusted variances
};

// Errors name the field: "n", "denominator_sum", "pre_denominator_sum".
Result<RatioCupedComparison> compare_ratio_cuped(const RatioCupedStats& control,
                                                 const RatioCupedStats& treatment, double alpha);

}  // namespace fulcrum::stats
