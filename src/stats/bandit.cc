#include "stats/bandit.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/limits.h"

namespace fulcrum::stats {
namespace {

// Composite Simpson on z in [-kRange, kRange] standard deviations of arm i's posterior.
constexpr double kRange = 9;
constexpr int kIntervals = 1200;  // even; step 0.015 sd, quadrature error < 1e-8 here

// Phi(x) with the C library's erfc: the integrals evaluate it arms^2 x 1200 times per call.
double standard_normal_cdf(double x) { return 0.5 * std::erfc(-x * M_SQRT1_2); }

}  // namespace

Result<BanditWeights> bandit_weights(const std::vector<SampleStats>& arms,
                                     const BanditSettings& settings) {
  if (arms.size() < 2) return invalid_argument("a bandit needs at least two arms", "arms");
  // The top-two integral costs arms^3 per quadrature point.
  if (arms.size() > limits::kMaxGroups) {
    return invalid_argument("a bandit has at most " + std::to_string(limits::kMaxGroups) + " arms",
                            "arms");
  }
  if (!std::isfinite(settings.min_weight)) return invalid_argument("must be finite", "min_weight");
  const size_t k = arms.size();
  BanditWeights out;
  out.enough_units = true;
  const double prior_precision =
      settings.prior.proper && settings.prior.variance > 0 ? 1 / settings.prior.variance : 0;
  std::vector<double> mean(k), sd(k);
  for (size_t i = 0; i < k; ++i) {
    auto estimate = mean_estimate(arms[i]);
    if (!estimate) return invalid_argument(estimate.status().message(), "arms");
    out.enough_units = out.enough_units && arms[i].n >= 100;
    const double data_precision =
        estimate->variance > 0 ? static_cast<double>(arms[i].n) / estimate->variance : 0;
    double precision = prior_precision + data_precision;
    if (!(precision > 0)) precision = 1e12;  // a constant arm: its mean is known exactly
    out.posterior_mean.push_back(
        (prior_precision * settings.prior.mean + data_precision * estimate->mean) / precision);
    out.posterior_sd.push_back(std::sqrt(1 / precision));
    // Lower is better: rank the negated means.
    mean[i] = settings.higher_is_better ? out.posterior_mean[i] : -out.posterior_mean[i];
    sd[i] = out.posterior_sd[i];
  }
  std::vector<double> best(k, 0), second(k, 0);
  std::vector<double> cdf(k);
  const double step = 2 * kRange / kIntervals;
  for (size_t i = 0; i < k; ++i) {
    for (int s = 0; s <= kIntervals; ++s) {
      const double z = -kRange + s * step;
      const double x = mean[i] + sd[i] * z;
      const double weight = (s == 0 || s == kIntervals) ? 1 : (s % 2 == 1 ? 4 : 2);
      // f_i(x) dx = phi(z) dz
      const double density = std::exp(-0.5 * z * z) * 0.3989422804014327;
      double all_below = 1;
      for (size_t j = 0; j < k; ++j) {
        if (j == i) continue;
        cdf[j] = standard_normal_cdf((x - mean[j]) / sd[j]);
        all_below *= cdf[j];
      }
      best[i] += weight * density * all_below;
      if (settings.top_two) {
        // Exactly one other arm above x: sum over it of (1 - F_k) prod of the rest.
        double exactly_one_above = 0;
        for (size_t j = 0; j < k; ++j) {
          if (j == i) continue;
          double rest = 1 - cdf[j];
          for (size_t m = 0; m < k; ++m) {
            if (m != i && m != j) rest *= cdf[m];
          }
          exactly_one_above += rest;
        }
        second[i] += weight * density * exactly_one_above;
      }
    }
    best[i] *= step / 3;
    second[i] *= step / 3;
  }
  // The integrals sum to 1 up to quadrature error; normalise so the weights are exact.
  double best_total = 0;
  for (double p : best) best_total += p;
  std::vector<double> raw(k);
  double raw_total = 0;
  for (size_t i = 0; i < k; ++i) {
    out.best_arm_probability.push_back(best[i] / best_total);
    raw[i] = settings.top_two ? (best[i] + second[i]) / 2 : best[i];
    raw_total += raw[i];
  }
  const double floor = std::max(0.0, settings.min_weight);
  const double total_floor = floor * static_cast<double>(k);
  for (size_t i = 0; i < k; ++i) {
    out.weights.push_back(total_floor >= 1 ? 1.0 / static_cast<double>(k)
                                           : floor + (1 - total_floor) * raw[i] / raw_total);
  }
  return out;
}

}  // namespace fulcrum::stats
