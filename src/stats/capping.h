// Capping (winsorisation) of a continuous per-user metric, as GrowthBook's metric capping:
// every user's value above the cap is replaced by the cap before the sufficient statistics
// are taken. The cap is either an absolute value or a percentile of the values of all the
// analysed users pooled over the groups, computed afresh on every analysis (so the same
// cap applies to every group and the comparison stays fair). Heavy-tailed revenue gets a
// much smaller variance for a small, known bias toward the capped population's means.
#pragma once

#include <cstdint>
#include <vector>

#include "stats/sample_stats.h"

namespace fulcrum::stats {

enum class CapKind { kAbsolute, kPercentile };
const char* cap_kind_name(CapKind kind);  // "absolute", "percentile"

struct CapSpec {
  CapKind kind = CapKind::kPercentile;
  double value = 0.99;  // the cap itself (absolute), or the percentile level in (0, 1)
  // Percentile caps only: compute the percentile over non-zero values (most users of a
  // revenue metric have none; GrowthBook's "ignore zeros").
  bool ignore_zeros = false;
};

// Sample quantile with linear interpolation between order statistics (Hyndman & Fan 1996
// definition 7; numpy.quantile's default and SQL PERCENTILE_CONT). `sorted` is ascending and
// non-empty, level in [0, 1].
double sample_quantile_sorted(const std::vector<double>& sorted, double level);

struct CappedGroups {
  double cap = 0;                          // the value users were capped at
  std::vector<SampleStats> capped;         // per group, same order as the input
  std::vector<SampleStats> uncapped;       // per group
  std::vector<std::int64_t> users_capped;  // per group: users whose value exceeded the cap
};

// Caps the per-user values of every group. Errors (kInvalidArgument): "value" when an
// absolute cap is not finite or a percentile is outside (0, 1); "values" when a value is not
// finite or there is nothing to take a percentile of.
Result<CappedGroups> cap_groups(const std::vector<std::vector<double>>& values_by_group,
                                const CapSpec& spec);

}  // namespace fulcrum::stats
