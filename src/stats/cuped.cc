#include "stats/cuped.h"

#include <cmath>
#include <string>

namespace fulcrum::stats {
namespace {

double covariance(double n, double sum_x, double sum_y, double sum_xy) {
  return (sum_xy - sum_x * sum_y / n) / (n - 1);
}

}  // namespace

Result<CupedAdjustment> cuped_adjust(const std::vector<CupedStats>& groups) {
  if (groups.empty()) return invalid_argument("no groups", "groups");
  double n_all = 0, x_all = 0, xx_all = 0, y_all = 0, xy_all = 0;
  CupedAdjustment result;
  for (size_t g = 0; g < groups.size(); ++g) {
    const CupedStats& group = groups[g];
    for (double value : {group.pre_sum, group.pre_sum_squares, group.cross_sum}) {
      if (!std::isfinite(value)) {
        return invalid_argument("pre-period sums must be finite", "pre_sum");
      }
    }
    auto plain = mean_estimate(group.post);
    if (!plain) return plain.status();
    result.unadjusted.push_back(*plain);
    n_all += static_cast<double>(group.post.n);
    x_all += group.pre_sum;
    xx_all += group.pre_sum_squares;
    y_all += group.post.sum;
    xy_all += group.cross_sum;
  }
  const double var_x_all = covariance(n_all, x_all, x_all, xx_all);
  if (var_x_all < 0) {
    return invalid_argument("pre_sum_squares is smaller than pre_sum^2/n", "pre_sum_squares");
  }
  result.theta = var_x_all > 0 ? covariance(n_all, x_all, y_all, xy_all) / var_x_all : 0;
  const double mean_x_all = x_all / n_all;
  const double theta = result.theta;
  for (size_t g = 0; g < groups.size(); ++g) {
    const CupedStats& group = groups[g];
    const double n = static_cast<double>(group.post.n);
    const double var_x = covariance(n, group.pre_sum, group.pre_sum, group.pre_sum_squares);
    const double cov_xy = covariance(n, group.pre_sum, group.post.sum, group.cross_sum);
    GroupEstimate adjusted = result.unadjusted[g];
    adjusted.mean -= theta * (group.pre_sum / n - mean_x_all);
    adjusted.variance += theta * theta * var_x - 2 * theta * cov_xy;
    if (adjusted.variance < 0) adjusted.variance = 0;
    result.adjusted.push_back(adjusted);
  }
  return result;
}

Result<Comparison> compare_cuped(const CupedStats& control, const CupedStats& treatment,
                                 double alpha) {
  auto adjustment = cuped_adjust({control, treatment});
  if (!adjustment) return adjustment.status();
  return compare_estimates(adjustment->adjusted[0], adjustment->adjusted[1], alpha,
                           TestDistribution::kStudentT);
}

}  // namespace fulcrum::stats
