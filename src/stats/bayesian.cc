#include "stats/bayesian.h"

#include <cmath>

#include "stats/distributions.h"

namespace fulcrum::stats {

Result<BayesianResult> bayesian_lift(double estimate, double standard_error,
                                     const GaussianPrior& prior, double alpha) {
  if (!std::isfinite(estimate)) return invalid_argument("estimate must be finite", "estimate");
  if (!(standard_error > 0) || !std::isfinite(standard_error)) {
    return invalid_argument("standard error must be positive", "standard_error");
  }
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("alpha must be in (0, 1)", "alpha");
  if (prior.proper && !(prior.variance > 0)) {
    return invalid_argument("prior variance must be positive", "prior.variance");
  }
  const double data_precision = 1 / (standard_error * standard_error);
  double precision = data_precision;
  double weighted = estimate * data_precision;
  if (prior.proper) {
    precision += 1 / prior.variance;
    weighted += prior.mean / prior.variance;
  }
  BayesianResult result;
  result.posterior_mean = weighted / precision;
  result.posterior_sd = std::sqrt(1 / precision);
  const double mu = result.posterior_mean;
  const double s = result.posterior_sd;
  const double z = mu / s;
  result.chance_to_beat_control = detail::normal_cdf(z);
  result.expected_loss_treatment = s * detail::normal_pdf(z) - mu * detail::normal_cdf(-z);
  result.expected_loss_control = s * detail::normal_pdf(z) + mu * detail::normal_cdf(z);
  // Clamp rounding noise: both losses are expectations of non-negative
  // variables.
  if (result.expected_loss_treatment < 0) result.expected_loss_treatment = 0;
  if (result.expected_loss_control < 0) result.expected_loss_control = 0;
  const double critical = detail::normal_quantile(1 - alpha / 2);
  result.credible_interval = {mu - critical * s, mu + critical * s};
  return result;
}

}  // namespace fulcrum::stats
