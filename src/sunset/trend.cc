#include "sunset/trend.h"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <map>

namespace fulcrum {

namespace {

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const std::size_t n = values.size();
  std::nth_element(values.begin(), values.begin() + n / 2, values.end());
  double upper = values[n / 2];
  if (n % 2 == 1) return upper;
  double lower = *std::max_element(values.begin(), values.begin() + n / 2);
  return (lower + upper) / 2;
}

// Sum of t(t-1)(2t+5) over groups of tied values, and sum of t(t-1)/2 (tied
// pairs).
void tie_sums(const std::vector<double>& y, double* variance_term, double* tied_pairs) {
  std::map<double, int> counts;
  for (double v : y) ++counts[v];
  *variance_term = 0;
  *tied_pairs = 0;
  for (const auto& [value, t] : counts) {
    double tt = t;
    *variance_term += tt * (tt - 1) * (2 * tt + 5);
    *tied_pairs += tt * (tt - 1) / 2;
  }
}

}  // namespace

TheilSen theil_sen(const std::vector<double>& y, double confidence) {
  TheilSen result;
  const std::size_t n = y.size();
  if (n < 2) return result;
  std::vector<double> slopes;
  slopes.reserve(n * (n - 1) / 2);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      slopes.push_back((y[j] - y[i]) / static_cast<double>(j - i));
    }
  }
  std::sort(slopes.begin(), slopes.end());
  result.slope = median(slopes);
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<double>(i);
  result.intercept = median(y) - result.slope * median(x);
  // Sen (1968) eq. 2.6: ranks of the interval ends among the sorted slopes.
  double variance_term = 0, tied_pairs = 0;
  tie_sums(y, &variance_term, &tied_pairs);
  const double nn = static_cast<double>(n);
  double sigma = std::sqrt((nn * (nn - 1) * (2 * nn + 5) - variance_term) / 18.0);
  double alpha = 1 - confidence;
  double z = boost::math::quantile(boost::math::normal(), alpha / 2);  // negative
  const double nt = static_cast<double>(slopes.size());
  // np.round rounds half to even, as nearbyint in the default rounding mode.
  long upper = std::min(static_cast<long>(std::nearbyint((nt - z * sigma) / 2)),
                        static_cast<long>(slopes.size()) - 1);
  long lower = std::max(static_cast<long>(std::nearbyint((nt + z * sigma) / 2)) - 1, 0L);
  if (lower > upper) std::swap(lower, upper);
  result.slope_low = slopes[static_cast<std::size_t>(std::max(lower, 0L))];
  result.slope_high = slopes[static_cast<std::size_t>(std::max(upper, 0L))];
  return result;
}

MannKendall mann_kendall(const std::vector<double>& y) {
  MannKendall result;
  const std::size_t n = y.size();
  if (n < 2) return result;
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      s += (y[j] > y[i]) - (y[j] < y[i]);
    }
  }
  double variance_term = 0, tied_pairs = 0;
  tie_sums(y, &variance_term, &tied_pairs);
  const double nn = static_cast<double>(n);
  result.s = s;
  result.variance = (nn * (nn - 1) * (2 * nn + 5) - variance_term) / 18.0;
  const double pairs = nn * (nn - 1) / 2;
  // tau-b: x has no ties, so the denominator is sqrt(pairs * (pairs - tied
  // pairs in y)).
  double tau_denominator = std::sqrt(pairs * (pairs - tied_pairs));
  result.tau = tau_denominator > 0 ? s / tau_denominator : 0.0;
  if (result.variance <= 0) return result;  // all values tied: no evidence of a trend
  double corrected = s > 0 ? s - 1 : (s < 0 ? s + 1 : 0);
  result.z = corrected / std::sqrt(result.variance);
  result.p_value =
      2 * boost::math::cdf(boost::math::complement(boost::math::normal(), std::fabs(result.z)));
  result.p_value = std::min(result.p_value, 1.0);
  return result;
}

}  // namespace fulcrum
