#include "stats/hypothesis.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "stats/distributions.h"

namespace fulcrum::stats {
namespace {

Status check_alpha(double alpha) {
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("alpha must be in (0, 1)", "alpha");
  return Status::ok();
}


}  // namespace

// Fills statistic, p-value and interval for an estimate with a known standard
// error. A zero standard error (e.g. 0 conversions in both groups) gives p = 1
// when the estimate is 0 and p = 0 otherwise, with a zero-width interval.
EffectTest two_sided_test(double estimate, double standard_error, double df, double alpha) {
  EffectTest test;
  test.estimate = estimate;
  test.standard_error = standard_error;
  test.df = df;
  if (standard_error > 0) {
    test.statistic = estimate / standard_error;
    test.p_value = 2 * detail::student_t_sf(std::abs(test.statistic), df);
    if (test.p_value > 1) test.p_value = 1;
    const double critical = detail::student_t_quantile(1 - alpha / 2, df);
    test.ci = {estimate - critical * standard_error, estimate + critical * standard_error};
  } else {
    test.statistic = estimate == 0 ? 0 : std::copysign(INFINITY, estimate);
    test.p_value = estimate == 0 ? 1 : 0;
    test.ci = {estimate, estimate};
  }
  return test;
}

double welch_degrees_of_freedom(const GroupEstimate& control, const GroupEstimate& treatment) {
  // Welch (1947) / Satterthwaite (1946): (s1^2/n1 + s0^2/n0)^2 / sum
  // (s^2/n)^2/(n-1).
  const double v0 = control.variance / static_cast<double>(control.n);
  const double v1 = treatment.variance / static_cast<double>(treatment.n);
  const double denominator =
      v0 * v0 / static_cast<double>(control.n - 1) + v1 * v1 / static_cast<double>(treatment.n - 1);
  if (denominator <= 0) return static_cast<double>(control.n + treatment.n - 2);
  return (v0 + v1) * (v0 + v1) / denominator;
}

Result<Comparison> compare_estimates(const GroupEstimate& control, const GroupEstimate& treatment,
                                     double alpha, TestDistribution distribution) {
  FULCRUM_RETURN_IF_ERROR(check_alpha(alpha));
  if (control.n < 1) return invalid_argument("control n must be positive", "control.n");
  if (treatment.n < 1) return invalid_argument("treatment n must be positive", "treatment.n");
  double df = std::numeric_limits<double>::infinity();
  if (distribution == TestDistribution::kStudentT) {
    if (control.n < 2) return invalid_argument("control n must be at least 2", "control.n");
    if (treatment.n < 2) {
      return invalid_argument("treatment n must be at least 2", "treatment.n");
    }
    df = welch_degrees_of_freedom(control, treatment);
  }
  const double n0 = static_cast<double>(control.n);
  const double n1 = static_cast<double>(treatment.n);
  Comparison comparison;
  const double difference = treatment.mean - control.mean;
  comparison.absolute = two_sided_test(
      difference, std::sqrt(control.variance / n0 + treatment.variance / n1), df, alpha);
  if (control.mean != 0) {
    // Delta method for m1/m0 - 1 with independent groups:
    // Var ~ s1^2/(n1 m0^2) + m1^2 s0^2/(n0 m0^4)   (GrowthBook
    // frequentist_variance).
    const double m0 = control.mean;
    const double m1 = treatment.mean;
    const double variance =
        treatment.variance / (n1 * m0 * m0) + m1 * m1 * control.variance / (n0 * m0 * m0 * m0 * m0);
    comparison.relative = two_sided_test(m1 / m0 - 1, std::sqrt(variance), df, alpha);
  }
  return comparison;
}

EffectTest one_sided_test(double estimate, double standard_error, double df, double alpha,
                          Tail tail, double test_value) {
  EffectTest test;
  test.estimate = estimate;
  test.standard_error = standard_error;
  test.df = df;
  const double sign = tail == Tail::kGreater ? 1 : -1;
  if (standard_error > 0) {
    test.statistic = (estimate - test_value) / standard_error;
    // P(T >= t) for kGreater, P(T <= t) = P(T >= -t) for kLesser.
    test.p_value = detail::student_t_sf(sign * test.statistic, df);
    const double halfwidth = detail::student_t_quantile(1 - alpha, df) * standard_error;
    test.ci = tail == Tail::kGreater ? Interval{estimate - halfwidth, INFINITY}
                                     : Interval{-INFINITY, estimate + halfwidth};
  } else {
    const double gap = sign * (estimate - test_value);
    test.statistic = gap == 0 ? 0 : std::copysign(INFINITY, estimate - test_value);
    test.p_value = gap > 0 ? 0 : 1;
    test.ci = tail == Tail::kGreater ? Interval{estimate, INFINITY} : Interval{-INFINITY, estimate};
  }
  return test;
}

Result<Comparison> compare_means(const SampleStats& control, const SampleStats& treatment,
                                 double alpha) {
  auto c = mean_estimate(control);
  if (!c) return invalid_argument(c.status().message(), "control." + c.status().field());
  auto t = mean_estimate(treatment);
  if (!t) return invalid_argument(t.status().message(), "treatment." + t.status().field());
  return compare_estimates(*c, *t, alpha, TestDistribution::kStudentT);
}

Result<Comparison> compare_proportions(const SampleStats& control, const SampleStats& treatment,
                                       double alpha) {
  auto c = proportion_estimate(control);
  if (!c) return invalid_argument(c.status().message(), "control." + c.status().field());
  auto t = proportion_estimate(treatment);
  if (!t) return invalid_argument(t.status().message(), "treatment." + t.status().field());
  auto comparison = compare_estimates(*c, *t, alpha, TestDistribution::kNormal);
  if (!comparison) return comparison;
  // The test of H0: p1 == p0 uses the pooled proportion (statsmodels
  // proportions_ztest, prop_var=False); the Wald interval above keeps the
  // unpooled standard error.
  const double n0 = static_cast<double>(control.n);
  const double n1 = static_cast<double>(treatment.n);
  const double pooled = (control.sum + treatment.sum) / (n0 + n1);
  const double pooled_se = std::sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1));
  EffectTest& absolute = comparison->absolute;
  if (pooled_se > 0) {
    absolute.statistic = absolute.estimate / pooled_se;
    absolute.p_value = std::min(1.0, 2 * detail::normal_sf(std::abs(absolute.statistic)));
  }
  return comparison;
}

Result<Comparison> compare_ratios(const RatioStats& control, const RatioStats& treatment,
                                  double alpha) {
  auto c = ratio_estimate(control);
  if (!c) return invalid_argument(c.status().message(), "control." + c.status().field());
  auto t = ratio_estimate(treatment);
  if (!t) return invalid_argument(t.status().message(), "treatment." + t.status().field());
  return compare_estimates(*c, *t, alpha, TestDistribution::kStudentT);
}

}  // namespace fulcrum::stats
