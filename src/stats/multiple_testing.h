// Multiple-comparison adjustments of p-values, identical to statsmodels
// multipletests(method='holm') (Holm 1979 step-down, controls the family-wise
// error rate) and multipletests(method='fdr_bh') (Benjamini & Hochberg 1995
// step-up, controls the false discovery rate). Output is in input order, each
// value capped at 1.
#pragma once

#include <vector>

#include "core/status.h"

namespace fulcrum::stats {

enum class Correction { kNone, kHolm, kBenjaminiHochberg };

// adjusted_(i) = max_{j<=i} min(1, (m - j + 1) p_(j)) over ascending p.
Result<std::vector<double>> holm_adjust(const std::vector<double>& p_values);
// adjusted_(i) = min_{j>=i} min(1, m p_(j) / j) over ascending p.
Result<std::vector<double>> benjamini_hochberg_adjust(const std::vector<double>& p_values);
Result<std::vector<double>> adjust_p_values(const std::vector<double>& p_values,
                                            Correction correction);

}  // namespace fulcrum::stats
