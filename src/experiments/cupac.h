// CUPAC on a test's results (GET /ab-tests/{id}/results?cupac=true): each exposed user's
// metric predicted from what the store knew before their first exposure, used as
// the CUPED covariate (stats/cupac.h), reported next to the unadjusted comparison and
// plain CUPED (the metric's own 14 days before exposure) so the variance each one removes
// can be read side by side.
//
// The features, all from before the user's first exposure: the metric's sums over the
// 0-7, 7-14, 14-28 and 28-56 days before it (from the metric events), and from the usage
// layer's rollups of the 28 whole days before the exposure day: active days, sessions,
// session minutes, feature uses, paywall hits, payments succeeded and failed, and the amount
// paid. The outcome is the analysed per-user value (capped at the analysis' cap; 0/1 for a
// binomial metric). The model is a cross-fitted ridge regression (5 folds by a hash of the
// user id, so the same users fall in the same fold on every backend and replica).
#pragma once

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "experiments/experiment.h"

namespace fulcrum {
class Store;
}

namespace fulcrum::experiments {

// The fold of a user: FNV-1a 64 of "cupac:" + user id, modulo `folds`.
std::uint32_t cupac_fold(std::string_view user_id, std::uint32_t folds);

// The report for every binomial and continuous metric of the test, in the test's order:
// {"metrics": [report | {"metric", "unavailable": reason}]}. A capped metric is reported at
// its cap in this analysis (`caps`: metric -> cap; absent = uncapped). Data that cannot
// support the model (too few users, every user alike) gives the reason; store failures are
// errors.
Result<nlohmann::json> cupac_report(Store& store, const Experiment& experiment,
                                    const std::map<std::string, double>& caps);

}  // namespace fulcrum::experiments
