// CUPAC, "Control Using Predictions As Covariates" (Tang, Huang, Li & Zhao 2020, DoorDash):
// CUPED (stats/cuped.h) whose covariate is a prediction of each user's metric from what was
// known about the user before their first exposure, instead of the metric's own pre-period
// value alone. Any covariate fixed before exposure keeps the CUPED estimate unbiased; the
// better it predicts the metric, the more variance it removes (var(y)(1 - rho^2)).
//
// The prediction here is a ridge regression of the metric on the pre-exposure features,
// cross-fitted (Chernozhukov et al. 2018, "Double/debiased machine learning", sec. 3): the
// users are split into folds and each user's prediction comes from the model fitted on the
// other folds, so no prediction uses the user's own outcome (which would carry the
// treatment effect into the covariate). The arms are pooled in every fit and the features
// are pre-exposure only, so the prediction is independent of the assignment.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"

namespace fulcrum::stats {

struct CupacOptions {
  int folds = 5;
  // Ridge penalty on the standardised features, per user of the training fold (the penalty
  // added to X'X is ridge * n_train), so it means the same at any size.
  double ridge = 1e-3;
};

struct CupacPredictions {
  std::vector<double> prediction;  // per user, cross-fitted (same order as the outcome)
  // 1 - SSE / SST of the cross-fitted predictions: the share of the metric's variance the
  // pre-exposure features explain out of fold (about rho^2, the CUPED variance cut).
  double cross_validated_r2 = 0;
  int folds = 0;
};

// `features` is row-major, users x feature_count; `fold_of_user` holds each user's fold in
// [0, options.folds). Ridge regression with an intercept on features standardised within
// each training fold (a constant feature gets weight 0). Errors (kInvalidArgument) name
// "features" (size or a non-finite value), "outcome", "fold_of_user", "folds" (fewer than
// 2, or a fold whose complement has fewer than feature_count + 2 users) and "ridge".
Result<CupacPredictions> cross_fitted_predictions(std::span<const double> features,
                                                  std::size_t feature_count,
                                                  std::span<const double> outcome,
                                                  std::span<const std::uint32_t> fold_of_user,
                                                  const CupacOptions& options = {});

}  // namespace fulcrum::stats
