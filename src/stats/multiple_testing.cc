#include "stats/multiple_testing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace fulcrum::stats {
namespace {

Result<std::vector<size_t>> ascending_order(const std::vector<double>& p_values) {
  for (double p : p_values) {
    if (!(p >= 0 && p <= 1)) return invalid_argument("p-values must be in [0, 1]", "p_values");
  }
  std::vector<size_t> order(p_values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  return order;
}

}  // namespace

Result<std::vector<double>> holm_adjust(const std::vector<double>& p_values) {
  auto order = ascending_order(p_values);
  if (!order) return order.status();
  const size_t m = p_values.size();
  std::vector<double> adjusted(m);
  double running_max = 0;
  for (size_t rank = 0; rank < m; ++rank) {
    const size_t i = (*order)[rank];
    running_max = std::max(running_max, static_cast<double>(m - rank) * p_values[i]);
    adjusted[i] = std::min(1.0, running_max);
  }
  return adjusted;
}

Result<std::vector<double>> benjamini_hochberg_adjust(const std::vector<double>& p_values) {
  auto order = ascending_order(p_values);
  if (!order) return order.status();
  const size_t m = p_values.size();
  std::vector<double> adjusted(m);
  double running_min = 1;
  for (size_t rank = m; rank-- > 0;) {
    const size_t i = (*order)[rank];
    running_min =
        std::min(running_min, p_values[i] * static_cast<double>(m) / static_cast<double>(rank + 1));
    adjusted[i] = running_min;
  }
  return adjusted;
}

Result<std::vector<double>> adjust_p_values(const std::vector<double>& p_values,
                                            Correction correction) {
  switch (correction) {
    case Correction::kHolm:
      return holm_adjust(p_values);
    case Correction::kBenjaminiHochberg:
      return benjamini_hochberg_adjust(p_values);
    case Correction::kNone:
      break;
  }
  auto order = ascending_order(p_values);
  if (!order) return order.status();
  return p_values;
}

}  // namespace fulcrum::stats
