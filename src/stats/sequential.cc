#include "stats/sequential.h"

#include <algorithm>
#include <cmath>

namespace fulcrum::stats {

double sequential_halfwidth(double s_squared, double total_n, double alpha, double tuning) {
  const double log_alpha = std::log(alpha);
  const double rho_squared = (-2 * log_alpha + std::log(-2 * log_alpha + 1)) / tuning;
  const double n_rho2_plus_1 = total_n * rho_squared + 1;
  return std::sqrt(s_squared) * std::sqrt(2 * n_rho2_plus_1 / (total_n * total_n * rho_squared) *
                                          std::log(std::sqrt(n_rho2_plus_1) / alpha));
}

Result<EffectTest> sequential_test(const EffectTest& fixed_horizon, std::int64_t total_n,
                                   double alpha, double tuning) {
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("alpha must be in (0, 1)", "alpha");
  if (!(tuning > 0) || !std::isfinite(tuning)) {
    return invalid_argument("sequential tuning parameter must be positive", "sequential_tuning");
  }
  if (total_n < 1) return invalid_argument("total n must be positive", "n");
  EffectTest test = fixed_horizon;
  const double n = static_cast<double>(total_n);
  const double log_alpha = std::log(alpha);
  const double rho_squared = (-2 * log_alpha + std::log(-2 * log_alpha + 1)) / tuning;
  const double n_rho2_plus_1 = n * rho_squared + 1;
  const double s_squared = test.standard_error * test.standard_error * n;
  const double half_width = sequential_halfwidth(s_squared, n, alpha, tuning);
  test.ci = {test.estimate - half_width, test.estimate + half_width};
  if (s_squared > 0) {
    const double exponent =
        -n * n * rho_squared * test.estimate * test.estimate / (2 * s_squared * n_rho2_plus_1);
    test.p_value = std::min(1.0, std::sqrt(n_rho2_plus_1) * std::exp(exponent));
  } else {
    test.p_value = test.estimate == 0 ? 1 : 0;
  }
  return test;
}

}  // namespace fulcrum::stats
