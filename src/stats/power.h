// Power analysis for a two-sided two-sample z-test, identical to statsmodels
// NormalIndPower
// (= zt_ind_solve_power): with standardized effect d and n1 = n, n2 = ratio n
// users,
//   power = Phi(-z_{1-alpha/2} + d sqrt(n_eff)) + Phi(-z_{1-alpha/2} - d
//   sqrt(n_eff)), n_eff = 1 / (1/n1 + 1/n2).
// Both tails are kept, so the sample size is found by root finding (bisection
// to machine precision), not by the textbook closed form 2 ((z_a + z_b)/d)^2
// which drops one tail. Proportions use Cohen's h = 2 asin(sqrt(p1)) - 2
// asin(sqrt(p0)) as the effect size (statsmodels proportion_effectsize); means
// use d = mde / sd.
#pragma once

#include <cstdint>
#include <optional>

#include "core/status.h"

namespace fulcrum::stats {

double normal_power(double effect_size, double n_per_group, double alpha, double ratio = 1);
// Smallest (fractional) n per group reaching `power`; statsmodels
// solve_power(nobs1=None).
Result<double> solve_sample_size(double effect_size, double alpha, double power, double ratio = 1);
// Standardized effect detectable with `power` given n per group;
// solve_power(effect_size=None).
Result<double> solve_effect_size(double n_per_group, double alpha, double power, double ratio = 1);
// Cohen's h for proportions (statsmodels proportion_effectsize(p1, p0)).
double cohens_h(double treatment_rate, double baseline_rate);

enum class MetricKind { kProportion, kMean };

struct PowerQuery {
  MetricKind kind = MetricKind::kProportion;
  double baseline = 0;  // conversion rate in (0,1), or the control mean
  double sd = 0;        // standard deviation per user (kMean only)
  double mde = 0;       // minimum detectable effect: absolute, or a fraction if relative
  bool relative = false;
  double alpha = 0.05;
  double power = 0.8;
  int groups = 2;                     // equal allocation over this many groups (control included)
  std::optional<double> daily_users;  // users entering the experiment per day, all groups
};

struct PowerPlan {
  double effect_size = 0;                  // Cohen's h or d
  double absolute_mde = 0;                 // treatment - baseline
  double exact_sample_size = 0;            // fractional solution per group
  std::int64_t sample_size_per_group = 0;  // rounded up
  std::int64_t total_sample_size = 0;
  std::optional<std::int64_t> days_needed;  // ceil(total / daily_users)
};

Result<PowerPlan> plan_sample_size(const PowerQuery& query);
// Absolute MDE (upward effect) detectable with n users per group; query.mde is
// ignored.
Result<double> minimum_detectable_effect(const PowerQuery& query, double n_per_group);

// Mid-experiment power (gbstats MidExperimentPower): for a running test whose lift so far has
// standard error se over `pairwise_sample_size` users (control + treatment), the power to
// detect `target_mde` after growing the sample by a factor (1 + k) is, with variance
// v = se^2 / (1 + k) and halfwidth h = z_{1 - alpha / (2 m)} sqrt(v) (m = comparisons when
// corrected, else 1; the confidence-sequence halfwidth at the grown sample when sequential):
//   power(k) = 1 - Phi((h - mde) / sqrt(v)) + Phi(-(h + mde) / sqrt(v)),
// and with a proper Gaussian prior N(mu0, tau^2) on the lift (Bayesian engine):
//   power(k) = 1 - Phi((v sqrt(1/tau^2 + 1/v) z - v mu0/tau^2 - mde) / sqrt(v))
//              + Phi(-(v sqrt(1/tau^2 + 1/v) z + v mu0/tau^2 + mde) / sqrt(v)).
// The target is power^(1 / goal_metrics) (every goal must be powered); k is found by
// doubling from 1 and bisecting on [0, k] to |power(k) - target| < 1e-5, exactly as gbstats
// does, so the published scaling factors are reproduced.
struct MidExperimentPowerQuery {
  double standard_error = 0;              // of the lift so far (relative, as a fraction)
  std::int64_t pairwise_sample_size = 0;  // users in control + this treatment so far
  double target_mde = 0.05;               // on the lift's scale
  double target_power = 0.8;
  double alpha = 0.05;
  int goal_metrics = 1;
  int variations = 2;      // groups, control included
  bool corrected = false;  // multiple-testing correction over (variations-1) * goals
  bool sequential = false;
  double sequential_tuning = 5000;
  bool prior_proper = false;  // Bayesian power with prior N(prior_mean, prior_variance)
  double prior_mean = 0, prior_variance = 1;
};

struct MidExperimentPower {
  double power_now = 0;          // power(0): with the users so far
  bool powered = false;          // power(0) already exceeds the target
  double scaling_factor = 0;     // k
  double additional_users = 0;   // k * pairwise_sample_size
  bool upper_bound_hit = false;  // even k = 2^27 was not enough (additional_users is then 0)
};

double mid_experiment_power_at(const MidExperimentPowerQuery& query, double scaling_factor);
// Errors name the field: "standard_error", "pairwise_sample_size", "target_mde",
// "target_power", "alpha", "prior_variance".
Result<MidExperimentPower> mid_experiment_power(const MidExperimentPowerQuery& query);

}  // namespace fulcrum::stats
