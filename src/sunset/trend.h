// Robust trend of a short series (e.g. 12 weekly active-user counts): the
// Theil-Sen slope (median of pairwise slopes; Sen 1968, JASA 63:1379) with its
// distribution-free confidence interval (Sen 1968 eq. 2.6, as
// scipy.stats.theilslopes), and the Mann-Kendall trend test (Mann 1945; Kendall
// 1975): S = sum_{i<j} sign(y_j - y_i), Var(S) = [n(n-1)(2n+5) - sum_t
// t(t-1)(2t+5)] / 18 over tie groups t, Z = (S - sign(S)) / sqrt(Var S)
// (continuity correction), two-sided p = 2(1 - Phi(|Z|)). x is the index 0..n-1
// (equally spaced, no ties in x).
#pragma once

#include <vector>

namespace fulcrum {

struct TheilSen {
  double slope = 0;      // median pairwise slope, units of y per step
  double intercept = 0;  // median(y) - slope * median(x), as scipy's default
  double slope_low = 0;  // confidence interval of the slope
  double slope_high = 0;
};

// Needs n >= 2 for a slope; n < 2 gives zeros. `confidence` in (0, 1), default
// 95%.
TheilSen theil_sen(const std::vector<double>& y, double confidence = 0.95);

struct MannKendall {
  double s = 0;         // Kendall's S statistic
  double variance = 0;  // Var(S) with tie correction
  double z = 0;         // continuity-corrected normal score
  double p_value = 1;   // two-sided
  double tau = 0;       // Kendall tau-b between index and y (as scipy.stats.kendalltau)
};

MannKendall mann_kendall(const std::vector<double>& y);

}  // namespace fulcrum
