// Two-sample frequentist comparisons of a treatment group against control, on
// the absolute difference (treatment - control) and the relative lift
// (treatment / control - 1). Continuous metrics: Welch t-test with
// Welch-Satterthwaite df (= scipy ttest_ind_from_stats(equal_var=False)).
// Binomial metrics: two-proportion z-test whose p-value uses the pooled
// proportion under H0 (= statsmodels proportions_ztest) while the interval uses
// the unpooled Wald standard error (= statsmodels confint_proportions_2indep
// method='wald'), because the pooled variance is only valid under H0. Relative
// lift uses the delta method (Deng et al. 2018 sec. 3.3; GrowthBook gbstats
// frequentist engine) with the same degrees of freedom as the absolute test.
// `alpha` is two-sided.
#pragma once

#include <limits>
#include <optional>

#include "stats/sample_stats.h"

namespace fulcrum::stats {

struct Interval {
  double lower = 0;
  double upper = 0;
};

struct EffectTest {
  double estimate = 0;        // difference, or relative lift as a fraction (0.05 = +5%)
  double standard_error = 0;  // of the estimate
  double statistic = 0;       // t or z
  double df = std::numeric_limits<double>::infinity();  // +inf for z-tests
  double p_value = 1;                                   // two-sided
  Interval ci;                                          // (1 - alpha) interval for the estimate
};

struct Comparison {
  EffectTest absolute;
  std::optional<EffectTest> relative;  // absent when the control mean is 0
};

enum class TestDistribution { kStudentT, kNormal };

// Welch t-test of means from sufficient statistics.
Result<Comparison> compare_means(const SampleStats& control, const SampleStats& treatment,
                                 double alpha);
// Two-proportion z-test; `sum` holds conversions.
Result<Comparison> compare_proportions(const SampleStats& control, const SampleStats& treatment,
                                       double alpha);
// Ratio metrics sum(x)/sum(y), delta-method variances, Welch df.
Result<Comparison> compare_ratios(const RatioStats& control, const RatioStats& treatment,
                                  double alpha);
// Generic comparison of two group estimates (used by the above and by CUPED).
// With kStudentT the df is Welch-Satterthwaite on variance/n of each group.
Result<Comparison> compare_estimates(const GroupEstimate& control, const GroupEstimate& treatment,
                                     double alpha, TestDistribution distribution);

// One-sided test of H0: effect <= test_value (kGreater: the treatment is
// greater) or H0: effect >= test_value (kLesser), as gbstats
// OneSidedTreatmentGreaterTTest / OneSidedTreatmentLesserTTest: statistic
// (estimate - test_value) / se, p-value from the upper (lower) Student t tail
// with `df` (+inf = normal), and the one-sided (1 - alpha) interval
// [estimate - t_{1-alpha} se, +inf) (or (-inf, estimate + t_{1-alpha} se]).
// A zero standard error gives p = 0 or 1 by the sign of estimate - test_value.
enum class Tail { kGreater, kLesser };
EffectTest one_sided_test(double estimate, double standard_error, double df, double alpha,
                          Tail tail, double test_value = 0);

// The two-sided test of H0: effect == 0 for an estimate with a known standard error: the
// statistic, the p-value from Student t with `df` (+inf = normal) and the (1 - alpha)
// interval. A zero standard error gives p = 1 when the estimate is 0 and p = 0 otherwise,
// with a zero-width interval.
EffectTest two_sided_test(double estimate, double standard_error, double df, double alpha);

// Welch-Satterthwaite degrees of freedom for two groups.
double welch_degrees_of_freedom(const GroupEstimate& control, const GroupEstimate& treatment);

}  // namespace fulcrum::stats
