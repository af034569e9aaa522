#include "stats/capping.h"

#include <algorithm>
#include <cmath>

namespace fulcrum::stats {

const char* cap_kind_name(CapKind kind) {
  return kind == CapKind::kAbsolute ? "absolute" : "percentile";
}

double sample_quantile_sorted(const std::vector<double>& sorted, double level) {
  const double position = level * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  if (below + 1 >= sorted.size()) return sorted.back();
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

Result<CappedGroups> cap_groups(const std::vector<std::vector<double>>& values_by_group,
                                const CapSpec& spec) {
  CappedGroups out;
  for (const auto& values : values_by_group) {
    for (double value : values) {
      if (!std::isfinite(value)) return invalid_argument("values must be finite", "values");
    }
  }
  if (spec.kind == CapKind::kAbsolute) {
    // +inf is "no cap" (how analyze() takes sums of uncapped values).
    if (std::isnan(spec.value) || spec.value == -INFINITY) {
      return invalid_argument("must be a number", "value");
    }
    out.cap = spec.value;
  } else {
    if (!(spec.value > 0 && spec.value < 1)) {
      return invalid_argument("a percentile cap must be in (0, 1), e.g. 0.99", "value");
    }
    std::vector<double> pooled;
    for (const auto& values : values_by_group) {
      for (double value : values) {
        if (!spec.ignore_zeros || value != 0) pooled.push_back(value);
      }
    }
    if (pooled.empty()) {
      return invalid_argument("no values to take the percentile cap of", "values");
    }
    std::sort(pooled.begin(), pooled.end());
    out.cap = sample_quantile_sorted(pooled, spec.value);
  }
  for (const auto& values : values_by_group) {
    SampleStats capped, uncapped;
    std::int64_t users_capped = 0;
    for (double value : values) {
      uncapped.n += 1;
      uncapped.sum += value;
      uncapped.sum_squares += value * value;
      const double kept = std::min(value, out.cap);
      users_capped += value > out.cap ? 1 : 0;
      capped.n += 1;
      capped.sum += kept;
      capped.sum_squares += kept * kept;
    }
    out.capped.push_back(capped);
    out.uncapped.push_back(uncapped);
    out.users_capped.push_back(users_capped);
  }
  return out;
}

}  // namespace fulcrum::stats
