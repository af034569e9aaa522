// Post-stratification of a two-group comparison of a mean (or proportion) metric, as gbstats
// does it (EffectMomentsPostStratification with PostStratificationSummary, GrowthBook
// packages/stats, "Algorithm 1" per cell and "Algorithm 4" to combine): users are split into
// strata by a pre-exposure attribute (tier, country, ...); within each stratum k the control
// mean a_k and the effect d_k = b_k - a_k are estimated, and the strata are combined with
// their observed shares nu_k = n_k / N,
//   mean  = sum_k nu_k (a_k, d_k),
//   cov   = A (diag(nu) - nu nu') A' / N  +  sum_k nu_k Sigma_k / N,
// where A is the 2 x K matrix of (a_k, d_k) and Sigma_k = [[Va, -Va], [-Va, Va + Vb]] with
// Va = var_a n_k / n_a,k and Vb = var_b n_k / n_b,k (the first term is the multinomial
// variance of the shares). The relative lift is d / |a| with the delta-method variance
// g' cov g, g = (-d / a^2, 1 / a). Degrees of freedom are Welch-Satterthwaite on the pooled
// groups and the interval is Student t, as in gbstats' TwoSidedTTest.
//
// A stratum where either group has fewer than 2 users or no variance cannot be estimated on
// its own: it is merged into the largest stratum first (gbstats combine_cells_for_analysis).
// With a single usable stratum the result is the plain comparison.
#pragma once

#include <cstddef>
#include <vector>

#include "stats/hypothesis.h"

namespace fulcrum::stats {

struct Stratum {
  SampleStats control;
  SampleStats treatment;
};

enum class StratifiedMetric { kMean, kProportion };

struct PostStratifiedComparison {
  Comparison comparison;       // absolute difference and relative lift, post-stratified
  Comparison unstratified;     // the same data, strata ignored (for the variance cut)
  std::size_t strata_used = 0;  // after merging strata that cannot stand alone
  std::size_t strata_merged = 0;
};

// Errors name the field: "strata" (none given), "strata[i].control.n", "strata[i].treatment.sum",
// "alpha", or "control" when the pooled control group has no variance or a zero mean.
Result<PostStratifiedComparison> compare_post_stratified(const std::vector<Stratum>& strata,
                                                         StratifiedMetric metric, double alpha);

}  // namespace fulcrum::stats
