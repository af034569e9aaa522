#include <cmath>
#include <string>

#include "stats/sample_stats.h"

namespace fulcrum::stats {
namespace {

Status check_finite(double value, const char* field) {
  if (!std::isfinite(value)) return invalid_argument(std::string(field) + " must be finite", field);
  return Status::ok();
}

// Sample (co)variance with ddof = 1 from sums: (sum_xy - sum_x sum_y / n) / (n
// - 1).
double sample_covariance(double n, double sum_x, double sum_y, double sum_xy) {
  return (sum_xy - sum_x * sum_y / n) / (n - 1);
}

}  // namespace

Result<GroupEstimate> mean_estimate(const SampleStats& stats) {
  if (stats.n < 2) return invalid_argument("n must be at least 2", "n");
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.sum, "sum"));
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.sum_squares, "sum_squares"));
  const double n = static_cast<double>(stats.n);
  double variance = sample_covariance(n, stats.sum, stats.sum, stats.sum_squares);
  // Cancellation in sum_squares - sum^2/n can leave a tiny negative number.
  if (variance < 0) {
    if (variance < -1e-9 * std::abs(stats.sum_squares) / n) {
      return invalid_argument("sum_squares is smaller than sum^2/n", "sum_squares");
    }
    variance = 0;
  }
  return GroupEstimate{stats.sum / n, variance, stats.n};
}

Result<GroupEstimate> proportion_estimate(const SampleStats& stats) {
  if (stats.n < 1) return invalid_argument("n must be at least 1", "n");
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.sum, "sum"));
  if (stats.sum < 0 || stats.sum > static_cast<double>(stats.n)) {
    return invalid_argument("conversions (sum) must be between 0 and n", "sum");
  }
  const double p = stats.sum / static_cast<double>(stats.n);
  return GroupEstimate{p, p * (1 - p), stats.n};
}

Result<GroupEstimate> ratio_estimate(const RatioStats& stats) {
  if (stats.n < 2) return invalid_argument("n must be at least 2", "n");
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.numerator_sum, "numerator_sum"));
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.numerator_sum_squares, "numerator_sum_squares"));
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.denominator_sum, "denominator_sum"));
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.denominator_sum_squares, "denominator_sum_squares"));
  FULCRUM_RETURN_IF_ERROR(check_finite(stats.cross_sum, "cross_sum"));
  if (stats.denominator_sum == 0) {
    return invalid_argument("denominator_sum must not be zero", "denominator_sum");
  }
  const double n = static_cast<double>(stats.n);
  const double mean_x = stats.numerator_sum / n;
  const double mean_y = stats.denominator_sum / n;
  const double var_x =
      sample_covariance(n, stats.numerator_sum, stats.numerator_sum, stats.numerator_sum_squares);
  const double var_y = sample_covariance(n, stats.denominator_sum, stats.denominator_sum,
                                         stats.denominator_sum_squares);
  const double cov_xy =
      sample_covariance(n, stats.numerator_sum, stats.denominator_sum, stats.cross_sum);
  if (var_x < -1e-9 * std::abs(stats.numerator_sum_squares) / n) {
    return invalid_argument("numerator_sum_squares is smaller than sum^2/n",
                            "numerator_sum_squares");
  }
  if (var_y < -1e-9 * std::abs(stats.denominator_sum_squares) / n) {
    return invalid_argument("denominator_sum_squares is smaller than sum^2/n",
                            "denominator_sum_squares");
  }
  // Deng et al. 2018 eq. 3: Var(mx/my) ~ (1/n)(vx/my^2 - 2 mx cov/my^3 + mx^2
  // vy/my^4).
  const double ratio = mean_x / mean_y;
  double variance = var_x / (mean_y * mean_y) - 2 * ratio * cov_xy / (mean_y * mean_y) +
                    ratio * ratio * var_y / (mean_y * mean_y);
  if (variance < 0) variance = 0;  // only possible through rounding of a degenerate sample
  return GroupEstimate{ratio, variance, stats.n};
}

}  // namespace fulcrum::stats
