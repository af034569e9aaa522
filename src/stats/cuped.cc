#include "stats/cuped.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "stats/distributions.h"

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

namespace {

// Per-unit moments of one group for ratio CUPED.
struct RatioMoments {
  double n = 0;
  double mean[4] = {0, 0, 0, 0};  // M, D, M', D'
  double lambda[4][4] = {};       // covariance matrix, ddof 1

  // Gradient of M/D - theta M'/D' at the means.
  void gradient(double theta, double out[4]) const {
    out[0] = 1 / mean[1];
    out[1] = -mean[0] / (mean[1] * mean[1]);
    out[2] = -theta / mean[3];
    out[3] = theta * mean[2] / (mean[3] * mean[3]);
  }
  double quadratic(const double left[4], const double right[4], int from_row, int to_row,
                   int from_col, int to_col) const {
    double total = 0;
    for (int i = from_row; i < to_row; ++i) {
      for (int j = from_col; j < to_col; ++j) total += left[i] * lambda[i][j] * right[j];
    }
    return total;
  }
  double variance(double theta) const {
    double g[4];
    gradient(theta, g);
    return quadratic(g, g, 0, 4, 0, 4);
  }
  double adjusted_mean(double theta) const { return mean[0] / mean[1] - theta * mean[2] / mean[3]; }
};

Result<RatioMoments> ratio_moments(const RatioCupedStats& s) {
  if (s.n < 2) return invalid_argument("ratio CUPED needs at least 2 users per group", "n");
  if (s.denominator_sum == 0) return invalid_argument("must not be 0", "denominator_sum");
  if (s.pre_denominator_sum == 0) return invalid_argument("must not be 0", "pre_denominator_sum");
  RatioMoments m;
  m.n = static_cast<double>(s.n);
  const double sums[4] = {s.numerator_sum, s.denominator_sum, s.pre_numerator_sum,
                          s.pre_denominator_sum};
  const double squares[4] = {s.numerator_sum_squares, s.denominator_sum_squares,
                             s.pre_numerator_sum_squares, s.pre_denominator_sum_squares};
  // products[i][j] = sum of per-user X_i X_j (i != j), X = (M, D, M', D').
  double products[4][4] = {};
  auto set = [&](int i, int j, double value) { products[i][j] = products[j][i] = value; };
  set(0, 1, s.numerator_denominator);
  set(0, 2, s.numerator_pre_numerator);
  set(0, 3, s.numerator_pre_denominator);
  set(1, 2, s.denominator_pre_numerator);
  set(1, 3, s.denominator_pre_denominator);
  set(2, 3, s.pre_numerator_pre_denominator);
  for (int i = 0; i < 4; ++i) {
    if (!std::isfinite(sums[i]) || !std::isfinite(squares[i])) {
      return invalid_argument("sums must be finite", "numerator_sum");
    }
    m.mean[i] = sums[i] / m.n;
    for (int j = 0; j < 4; ++j) {
      const double product = i == j ? squares[i] : products[i][j];
      m.lambda[i][j] = (product - sums[i] * sums[j] / m.n) / (m.n - 1);
    }
  }
  return m;
}

}  // namespace

Result<RatioCupedComparison> compare_ratio_cuped(const RatioCupedStats& control,
                                                 const RatioCupedStats& treatment, double alpha) {
  auto a = ratio_moments(control);
  if (!a) return invalid_argument(a.status().message(), "control." + a.status().field());
  auto b = ratio_moments(treatment);
  if (!b) return invalid_argument(b.status().message(), "treatment." + b.status().field());
  RatioCupedComparison out;
  // theta with the gradient at theta = 1 (gbstats sets theta = 1 so that the pre-period
  // partial derivatives carry no theta).
  double ga[4], gb[4];
  a->gradient(1, ga);
  b->gradient(1, gb);
  const double var_pre = a->quadratic(ga, ga, 2, 4, 2, 4) + b->quadratic(gb, gb, 2, 4, 2, 4);
  const double covariance = a->quadratic(ga, ga, 2, 4, 0, 2) + b->quadratic(gb, gb, 2, 4, 0, 2);
  out.theta = var_pre == 0 ? 0 : -covariance / var_pre;
  if (std::abs(out.theta) < 1e-8) out.theta = 0;  // gbstats falls back to the plain ratio
  const double theta = out.theta;
  out.control = {a->adjusted_mean(theta), a->variance(theta), control.n};
  out.treatment = {b->adjusted_mean(theta), b->variance(theta), treatment.n};
  auto comparison =
      compare_estimates(out.control, out.treatment, alpha, TestDistribution::kStudentT);
  if (!comparison) return comparison.status();
  out.comparison = *comparison;
  // Relative lift against the unadjusted control ratio (gbstats
  // frequentist_variance_relative_cuped_ratio).
  const double baseline = a->mean[0] / a->mean[1];
  if (baseline != 0) {
    const double sign = baseline > 0 ? 1 : -1;
    const double g_abs = (out.treatment.mean - out.control.mean) * sign;
    const double g_den = std::abs(baseline);
    const double d_post = a->mean[1];
    double nabla_a[4];
    nabla_a[0] = -(g_den + g_abs) / d_post / (g_den * g_den);
    nabla_a[1] = (a->mean[0] * g_den / (d_post * d_post) + a->mean[0] * g_abs / (d_post * d_post)) /
                 (g_den * g_den);
    double grad_a[4], grad_b[4];
    a->gradient(theta, grad_a);
    b->gradient(theta, grad_b);
    nabla_a[2] = -grad_a[2] / g_den;
    nabla_a[3] = -grad_a[3] / g_den;
    double nabla_b[4];
    for (int i = 0; i < 4; ++i) nabla_b[i] = grad_b[i] / g_den;
    const double variance = a->quadratic(nabla_a, nabla_a, 0, 4, 0, 4) / a->n +
                            b->quadratic(nabla_b, nabla_b, 0, 4, 0, 4) / b->n;
    const double estimate = (out.treatment.mean - out.control.mean) / g_den;
    // Reuse the Welch df and the interval arithmetic of compare_estimates.
    EffectTest relative = out.comparison.absolute;
    relative.estimate = estimate;
    relative.standard_error = std::sqrt(variance);
    const double df = out.comparison.absolute.df;
    const double critical = detail::student_t_quantile(1 - alpha / 2, df);
    relative.statistic = relative.standard_error > 0 ? estimate / relative.standard_error : 0;
    relative.p_value =
        relative.standard_error > 0
            ? std::min(1.0, 2 * detail::student_t_sf(std::abs(relative.statistic), df))
            : (estimate == 0 ? 1 : 0);
    relative.ci = {estimate - critical * relative.standard_error,
                   estimate + critical * relative.standard_error};
    out.comparison.relative = relative;
  } else {
    out.comparison.relative.reset();
  }
  return out;
}

}  // namespace fulcrum::stats
