// Bayesian read-out of a lift with a Gaussian approximation, as GrowthBook's
// Bayesian engine (gbstats EffectBayesianABTest): the data give lift ~
// N(estimate, se^2) (delta method for relative lift); with prior N(mu0, tau^2)
// the posterior is Gaussian with precision 1/se^2 + 1/tau^2 and mean
// (estimate/se^2 + mu0/tau^2)/precision; a flat prior drops the tau terms. Then
// for posterior N(mu, s^2):
//   chance to beat control  P(lift > 0)       = Phi(mu / s)
//   expected loss if shipping treatment E[max(0, -lift)] = s phi(mu/s) - mu
//   Phi(-mu/s) expected loss if keeping control    E[max(0,  lift)] = s
//   phi(mu/s) + mu Phi(mu/s)
// (the mean of a normal truncated at 0 times the probability of that side).
#pragma once

#include "core/status.h"
#include "stats/hypothesis.h"

namespace fulcrum::stats {

struct GaussianPrior {
  bool proper = false;  // false = flat prior (posterior = likelihood)
  double mean = 0;
  double variance = 0.09;  // weak prior on relative lift: sd 0.3 (GrowthBook's default)
};

struct BayesianResult {
  double posterior_mean = 0;
  double posterior_sd = 0;
  double chance_to_beat_control = 0.5;  // P(lift > 0)
  double expected_loss_treatment = 0;   // risk of shipping the treatment
  double expected_loss_control = 0;     // risk of keeping the control
  Interval credible_interval;           // equal-tailed (1 - alpha)
};

// `estimate` and `standard_error` come from a frequentist EffectTest (usually
// relative).
Result<BayesianResult> bayesian_lift(double estimate, double standard_error,
                                     const GaussianPrior& prior, double alpha = 0.05);

}  // namespace fulcrum::stats
