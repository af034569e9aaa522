// Multi-armed bandit weights by Thompson sampling (GrowthBook gbstats Bandits): every arm's
// mean gets a Gaussian posterior (flat or N(mu0, tau^2) prior, data precision n / s^2 with the
// sample variance s^2); an arm's weight is its posterior probability of being the best arm
// or, with top-two (Russo 2020, "Simple Bayesian algorithms for best-arm identification"),
// the average of its probabilities of being the best and the second best. gbstats estimates
// these from 10^4 Monte Carlo draws; here they are computed by numerical integration of the
// independent Gaussian posteriors,
//   P(i best)   = int f_i(x) prod_{j != i} F_j(x) dx,
//   P(i second) = sum_{k != i} int f_i(x) (1 - F_k(x)) prod_{j != i, k} F_j(x) dx,
// so they are deterministic. The minimum weight f is applied as gbstats does, additively on
// the simplex: w_i = f + (1 - K f) p_i (uniform when K f >= 1; a negative f counts as 0).
#pragma once

#include <vector>

#include "stats/bayesian.h"
#include "stats/sample_stats.h"

namespace fulcrum::stats {

inline constexpr double kDefaultBanditMinWeight = 0.01;

struct BanditSettings {
  bool top_two = true;
  double min_weight = kDefaultBanditMinWeight;  // per arm
  bool higher_is_better = true;
  GaussianPrior prior;  // on each arm's mean; flat unless proper
};

struct BanditWeights {
  std::vector<double> weights;               // sum to 1, each >= min_weight
  std::vector<double> best_arm_probability;  // P(arm is best) under the posterior
  std::vector<double> posterior_mean, posterior_sd;
  // gbstats only changes weights once every arm has 100 users; before that callers keep
  // the current weights.
  bool enough_units = false;
};

// `arms` are per-user sufficient statistics (binomial metrics: sum = conversions and
// sum_squares = conversions). Errors name "arms" (fewer than two, or an arm with n < 2) or
// "min_weight" (not finite).
Result<BanditWeights> bandit_weights(const std::vector<SampleStats>& arms,
                                     const BanditSettings& settings);

}  // namespace fulcrum::stats
