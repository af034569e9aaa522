#include "stats/post_stratification.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <string>

namespace fulcrum::stats {
namespace {

// gbstats' SampleMeanStatistic / ProportionStatistic: a group of fewer than 2 users (mean:
// of none, proportion) has variance 0, so the cell is not viable on its own.
double variance_of(const SampleStats& s, StratifiedMetric metric) {
  if (s.n <= 0) return 0;
  const double n = static_cast<double>(s.n);
  if (metric == StratifiedMetric::kProportion) {
    const double p = s.sum / n;
    return p * (1 - p);
  }
  if (s.n <= 1) return 0;
  return (s.sum_squares - s.sum * s.sum / n) / (n - 1);
}

double mean_of(const SampleStats& s) { return s.n > 0 ? s.sum / static_cast<double>(s.n) : 0; }

SampleStats plus(const SampleStats& a, const SampleStats& b) {
  return {a.n + b.n, a.sum + b.sum, a.sum_squares + b.sum_squares};
}

Status check_group(const SampleStats& s, StratifiedMetric metric, const std::string& field) {
  if (s.n < 0) return invalid_argument("n must not be negative", field + ".n");
  if (!std::isfinite(s.sum)) return invalid_argument("sum must be finite", field + ".sum");
  if (!std::isfinite(s.sum_squares) || s.sum_squares < 0) {
    return invalid_argument("sum_squares must be finite and not negative", field + ".sum_squares");
  }
  if (metric == StratifiedMetric::kProportion &&
      (s.sum < 0 || s.sum > static_cast<double>(s.n))) {
    return invalid_argument("conversions must be between 0 and n", field + ".sum");
  }
  return Status::ok();
}

bool viable(const Stratum& s, StratifiedMetric metric) {
  return variance_of(s.control, metric) > 0 && variance_of(s.treatment, metric) > 0;
}

}  // namespace

Result<PostStratifiedComparison> compare_post_stratified(const std::vector<Stratum>& strata,
                                                         StratifiedMetric metric, double alpha) {
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("alpha must be in (0, 1)", "alpha");
  if (strata.empty()) return invalid_argument("at least one stratum is needed", "strata");
  Stratum pooled;
  for (std::size_t i = 0; i < strata.size(); ++i) {
    const std::string field = "strata[" + std::to_string(i) + "]";
    FULCRUM_RETURN_IF_ERROR(check_group(strata[i].control, metric, field + ".control"));
    FULCRUM_RETURN_IF_ERROR(check_group(strata[i].treatment, metric, field + ".treatment"));
    pooled.control = plus(pooled.control, strata[i].control);
    pooled.treatment = plus(pooled.treatment, strata[i].treatment);
  }
  const GroupEstimate control{mean_of(pooled.control), variance_of(pooled.control, metric),
                              pooled.control.n};
  const GroupEstimate treatment{mean_of(pooled.treatment), variance_of(pooled.treatment, metric),
                                pooled.treatment.n};
  if (control.variance <= 0 || treatment.variance <= 0) {
    return invalid_argument("a group has no variance (fewer than 2 users or all values equal)",
                            control.variance <= 0 ? "control" : "treatment");
  }
  if (control.mean == 0) return invalid_argument("the control mean is 0", "control");

  PostStratifiedComparison out;
  auto unstratified = compare_estimates(control, treatment, alpha, TestDistribution::kStudentT);
  if (!unstratified) return unstratified.status();
  out.unstratified = *unstratified;

  // Largest stratum first (a stable sort, as Python's sorted); a stratum that cannot be
  // estimated alone joins the largest.
  std::vector<Stratum> cells(strata.begin(), strata.end());
  std::stable_sort(cells.begin(), cells.end(), [](const Stratum& a, const Stratum& b) {
    return a.control.n + a.treatment.n > b.control.n + b.treatment.n;
  });
  std::vector<Stratum> used{cells.front()};
  for (std::size_t i = 1; i < cells.size(); ++i) {
    if (viable(cells[i], metric)) {
      used.push_back(cells[i]);
    } else {
      used.front().control = plus(used.front().control, cells[i].control);
      used.front().treatment = plus(used.front().treatment, cells[i].treatment);
      ++out.strata_merged;
    }
  }
  out.strata_used = used.size();
  const double df = welch_degrees_of_freedom(control, treatment);
  if (used.size() == 1) {
    out.comparison = out.unstratified;
    return out;
  }

  const double total = static_cast<double>(control.n + treatment.n);
  const std::size_t k = used.size();
  std::vector<double> nu(k), base(k), effect(k);
  std::array<double, 3> within{0, 0, 0};  // sum nu_k Sigma_k: [00], [01], [11]
  for (std::size_t i = 0; i < k; ++i) {
    const Stratum& s = used[i];
    if (!viable(s, metric)) {  // only the largest can be: everything else merged into it
      return invalid_argument("the largest stratum has a group without variance",
                              "strata");
    }
    const double n_a = static_cast<double>(s.control.n);
    const double n_b = static_cast<double>(s.treatment.n);
    const double n = n_a + n_b;
    nu[i] = n / total;
    base[i] = mean_of(s.control);
    effect[i] = mean_of(s.treatment) - base[i];
    const double va = variance_of(s.control, metric) * n / n_a;
    const double vb = variance_of(s.treatment, metric) * n / n_b;
    within[0] += nu[i] * va;
    within[1] -= nu[i] * va;
    within[2] += nu[i] * (va + vb);
  }
  double mean0 = 0, mean1 = 0;
  for (std::size_t i = 0; i < k; ++i) {
    mean0 += nu[i] * base[i];
    mean1 += nu[i] * effect[i];
  }
  // A (diag(nu) - nu nu') A' = sum_k nu_k x_k x_k' - m m' for the columns x_k of A.
  double between00 = -mean0 * mean0, between01 = -mean0 * mean1, between11 = -mean1 * mean1;
  for (std::size_t i = 0; i < k; ++i) {
    between00 += nu[i] * base[i] * base[i];
    between01 += nu[i] * base[i] * effect[i];
    between11 += nu[i] * effect[i] * effect[i];
  }
  const double cov00 = (between00 + within[0]) / total;
  const double cov01 = (between01 + within[1]) / total;
  const double cov11 = (between11 + within[2]) / total;

  out.comparison.absolute = two_sided_test(mean1, std::sqrt(std::max(cov11, 0.0)), df, alpha);
  if (mean0 != 0) {
    const double g0 = -mean1 / (mean0 * mean0);
    const double g1 = 1 / mean0;
    const double variance = g0 * g0 * cov00 + 2 * g0 * g1 * cov01 + g1 * g1 * cov11;
    out.comparison.relative =
        two_sided_test(mean1 / std::abs(mean0), std::sqrt(std::max(variance, 0.0)), df, alpha);
  }
  return out;
}

}  // namespace fulcrum::stats
