#include "stats/power.h"

#include <cmath>
#include <numbers>

#include "stats/distributions.h"

namespace fulcrum::stats {
namespace {

double effective_n(double n_per_group, double ratio) {
  return 1 / (1 / n_per_group + 1 / (n_per_group * ratio));
}

Status check_common(double alpha, double power, double ratio) {
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("alpha must be in (0, 1)", "alpha");
  if (!(power > alpha && power < 1))
    return invalid_argument("power must be in (alpha, 1)", "power");
  if (!(ratio > 0) || !std::isfinite(ratio))
    return invalid_argument("ratio must be positive", "ratio");
  return Status::ok();
}

// Bisection on an increasing function between a bracket known to hold the root;
// runs until the bracket stops shrinking in double precision.
template <typename F>
double bisect(F&& f, double low, double high) {
  for (int i = 0; i < 400; ++i) {
    const double mid = 0.5 * (low + high);
    if (mid <= low || mid >= high) break;
    (f(mid) < 0 ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

Status check_query(const PowerQuery& query) {
  if (query.kind == MetricKind::kProportion) {
    if (!(query.baseline > 0 && query.baseline < 1)) {
      return invalid_argument("baseline conversion rate must be in (0, 1)", "baseline");
    }
  } else {
    if (!std::isfinite(query.baseline))
      return invalid_argument("baseline must be finite", "baseline");
    if (!(query.sd > 0) || !std::isfinite(query.sd))
      return invalid_argument("sd must be positive", "sd");
    if (query.relative && query.baseline == 0) {
      return invalid_argument("a relative mde needs a non-zero baseline", "baseline");
    }
  }
  if (query.groups < 2) return invalid_argument("groups must be at least 2", "groups");
  if (query.daily_users && !(*query.daily_users > 0)) {
    return invalid_argument("daily users must be positive", "daily_users");
  }
  return check_common(query.alpha, query.power, 1);
}

}  // namespace

double normal_power(double effect_size, double n_per_group, double alpha, double ratio) {
  const double critical = detail::normal_quantile(1 - alpha / 2);
  const double shift = effect_size * std::sqrt(effective_n(n_per_group, ratio));
  return detail::normal_sf(critical - shift) + detail::normal_cdf(-critical - shift);
}

Result<double> solve_sample_size(double effect_size, double alpha, double power, double ratio) {
  FULCRUM_RETURN_IF_ERROR(check_common(alpha, power, ratio));
  if (!(effect_size != 0) || !std::isfinite(effect_size)) {
    return invalid_argument("effect size must be non-zero", "mde");
  }
  const double d = std::abs(effect_size);
  const double z_alpha = detail::normal_quantile(1 - alpha / 2);
  // One-tail closed forms bracket the root: the far tail adds between 0 and
  // alpha/2 power.
  const double scale = 1 / (1 + 1 / ratio);  // n_eff = scale * n
  auto one_tail_n = [&](double target) {
    const double z = z_alpha + detail::normal_quantile(target);
    return z > 0 ? z * z / (d * d * scale) : 0.0;
  };
  const double high = one_tail_n(power);
  const double low = one_tail_n(power - alpha / 2);
  return bisect([&](double n) { return normal_power(d, n, alpha, ratio) - power; }, low, high);
}

Result<double> solve_effect_size(double n_per_group, double alpha, double power, double ratio) {
  FULCRUM_RETURN_IF_ERROR(check_common(alpha, power, ratio));
  if (!(n_per_group > 0) || !std::isfinite(n_per_group)) {
    return invalid_argument("n per group must be positive", "n");
  }
  const double root_n = std::sqrt(effective_n(n_per_group, ratio));
  const double z_alpha = detail::normal_quantile(1 - alpha / 2);
  const double high = (z_alpha + detail::normal_quantile(power)) / root_n;
  const double low = std::max(0.0, (z_alpha + detail::normal_quantile(power - alpha / 2)) / root_n);
  return bisect([&](double d) { return normal_power(d, n_per_group, alpha, ratio) - power; }, low,
                high);
}

double cohens_h(double treatment_rate, double baseline_rate) {
  return 2 * std::asin(std::sqrt(treatment_rate)) - 2 * std::asin(std::sqrt(baseline_rate));
}

Result<PowerPlan> plan_sample_size(const PowerQuery& query) {
  FULCRUM_RETURN_IF_ERROR(check_query(query));
  if (!(query.mde != 0) || !std::isfinite(query.mde)) {
    return invalid_argument("mde must be non-zero", "mde");
  }
  PowerPlan plan;
  plan.absolute_mde = query.relative ? query.baseline * query.mde : query.mde;
  if (query.kind == MetricKind::kProportion) {
    const double treatment_rate = query.baseline + plan.absolute_mde;
    if (!(treatment_rate > 0 && treatment_rate < 1)) {
      return invalid_argument("baseline + mde must stay a rate in (0, 1)", "mde");
    }
    plan.effect_size = std::abs(cohens_h(treatment_rate, query.baseline));
  } else {
    plan.effect_size = std::abs(plan.absolute_mde) / query.sd;
  }
  auto n = solve_sample_size(plan.effect_size, query.alpha, query.power);
  if (!n) return n.status();
  // A vanishing effect needs an unbounded sample: refuse it before the integer conversions
  // (found by analyze_fuzzer: 1.3e19 users per group overflowed int64).
  constexpr double kMaxUsersPerGroup = 1e15;
  if (!(*n <= kMaxUsersPerGroup)) {
    return invalid_argument(
        "the effect is too small to plan for: more than 1e15 users per group would be needed",
        "mde");
  }
  plan.exact_sample_size = *n;
  plan.sample_size_per_group = static_cast<std::int64_t>(std::ceil(*n));
  plan.total_sample_size = plan.sample_size_per_group * query.groups;
  if (query.daily_users) {
    plan.days_needed = static_cast<std::int64_t>(
        std::ceil(static_cast<double>(plan.total_sample_size) / *query.daily_users));
  }
  return plan;
}

Result<double> minimum_detectable_effect(const PowerQuery& query, double n_per_group) {
  FULCRUM_RETURN_IF_ERROR(check_query(query));
  auto d = solve_effect_size(n_per_group, query.alpha, query.power);
  if (!d) return d.status();
  if (query.kind == MetricKind::kMean) return *d * query.sd;
  // Invert Cohen's h upward: p1 = sin(asin(sqrt(p0)) + h/2)^2.
  const double angle = std::asin(std::sqrt(query.baseline)) + *d / 2;
  if (angle >= std::numbers::pi / 2) {
    return invalid_argument("no rate above the baseline is detectable with this n", "n");
  }
  const double root = std::sin(angle);
  return root * root - query.baseline;
}

}  // namespace fulcrum::stats
