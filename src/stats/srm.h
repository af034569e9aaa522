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

// Sequential (anytime-valid) SRM for a check repeated at every look: the
// Dirichlet-multinomial Bayes factor of Lindon & Malek (2022, "Anytime-Valid Inference for
// Multinomial Count Data", NeurIPS, sec. 2, the test martingale of H0: theta = theta0).
// With theta0 = weights / sum(weights) and the prior Dirichlet(a_i = concentration *
// theta0_i), A = sum a_i, n = sum x_i:
//   BF_n = Gamma(A) / Gamma(A + n) * prod_i Gamma(a_i + x_i) / Gamma(a_i)
//          / prod_i theta0_i^x_i.
// Under H0 (users fall into groups with the allocation's probabilities) BF_n is a
// nonnegative martingale with mean 1, so by Ville's inequality
// P(BF_n >= 1/threshold at any n) <= threshold: flagging whenever BF_n >= 1/threshold, at as
// many looks as one likes, keeps the false-alarm rate at most `threshold`, where the
// chi-square's p < threshold at every look does not. p_value = min(1, 1 / BF_n) at this look.
inline constexpr double kSequentialSrmConcentration = 100;

struct SequentialSrmResult {
  double log_bayes_factor = 0;
  double p_value = 1;
  bool mismatch = false;  // BF_n >= 1 / threshold
};

Result<SequentialSrmResult> sequential_sample_ratio_mismatch(
    const std::vector<std::int64_t>& observed, const std::vector<double>& weights,
    double threshold = kSrmThreshold, double concentration = kSequentialSrmConcentration);

}  // namespace fulcrum::stats
