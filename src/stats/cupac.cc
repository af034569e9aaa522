#include "stats/cupac.h"

#include <Eigen/Dense>
#include <cmath>
#include <string>

namespace fulcrum::stats {
namespace {

constexpr std::size_t kMaxFeatures = 64;

// Sums of one fold's users, on values shifted by the global means (keeps the centred
// cross products accurate when a feature's mean is large against its spread).
struct FoldSums {
  double n = 0;
  Eigen::VectorXd x, xy;  // sum x, sum x*y
  Eigen::MatrixXd xx;     // sum x x'
  double y = 0, yy = 0;
  explicit FoldSums(std::size_t k)
      : x(Eigen::VectorXd::Zero(static_cast<Eigen::Index>(k))),
        xy(Eigen::VectorXd::Zero(static_cast<Eigen::Index>(k))),
        xx(Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k))) {}
};

}  // namespace

Result<CupacPredictions> cross_fitted_predictions(std::span<const double> features,
                                                  std::size_t feature_count,
                                                  std::span<const double> outcome,
                                                  std::span<const std::uint32_t> fold_of_user,
                                                  const CupacOptions& options) {
  const std::size_t n = outcome.size();
  const std::size_t k = feature_count;
  if (k == 0 || k > kMaxFeatures) {
    return invalid_argument("between 1 and 64 features per user", "features");
  }
  if (features.size() != n * k) {
    return invalid_argument("must hold feature_count values per user of the outcome", "features");
  }
  if (fold_of_user.size() != n) return invalid_argument("one fold per user", "fold_of_user");
  if (options.folds < 2 || options.folds > 100) {
    return invalid_argument("between 2 and 100 folds", "folds");
  }
  if (!(options.ridge >= 0) || !std::isfinite(options.ridge)) {
    return invalid_argument("must be a finite non-negative penalty", "ridge");
  }
  const auto folds = static_cast<std::size_t>(options.folds);
  for (double value : features) {
    if (!std::isfinite(value)) return invalid_argument("must be finite", "features");
  }
  for (double value : outcome) {
    if (!std::isfinite(value)) return invalid_argument("must be finite", "outcome");
  }
  for (std::uint32_t fold : fold_of_user) {
    if (fold >= folds) return invalid_argument("a fold outside [0, folds)", "fold_of_user");
  }

  const auto dim = static_cast<Eigen::Index>(k);
  Eigen::VectorXd shift_x = Eigen::VectorXd::Zero(dim);
  double shift_y = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j)
      shift_x[static_cast<Eigen::Index>(j)] += features[i * k + j];
    shift_y += outcome[i];
  }
  if (n > 0) {
    shift_x /= static_cast<double>(n);
    shift_y /= static_cast<double>(n);
  }
  std::vector<FoldSums> per_fold(folds, FoldSums(k));
  Eigen::VectorXd row(dim);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      row[static_cast<Eigen::Index>(j)] =
          features[i * k + j] - shift_x[static_cast<Eigen::Index>(j)];
    }
    const double y = outcome[i] - shift_y;
    FoldSums& sums = per_fold[fold_of_user[i]];
    sums.n += 1;
    sums.x += row;
    sums.xy += row * y;
    sums.xx.selfadjointView<Eigen::Lower>().rankUpdate(row);
    sums.y += y;
    sums.yy += y * y;
  }
  FoldSums total(k);
  for (const FoldSums& sums : per_fold) {
    total.n += sums.n;
    total.x += sums.x;
    total.xy += sums.xy;
    total.xx += sums.xx;
    total.y += sums.y;
    total.yy += sums.yy;
  }

  // Per fold: the model fitted on every other fold, as (intercept, weights) on the shifted
  // raw features (standardisation folded into the weights).
  std::vector<Eigen::VectorXd> weights(folds);
  std::vector<double> intercepts(folds, 0);
  for (std::size_t f = 0; f < folds; ++f) {
    const double m = total.n - per_fold[f].n;
    if (m < static_cast<double>(k) + 2) {
      return invalid_argument("every fold's complement needs more users than features + 1",
                              "folds");
    }
    const Eigen::VectorXd sum_x = total.x - per_fold[f].x;
    const Eigen::VectorXd sum_xy = total.xy - per_fold[f].xy;
    const Eigen::MatrixXd lower_xx = total.xx - per_fold[f].xx;
    const Eigen::MatrixXd sum_xx = lower_xx.selfadjointView<Eigen::Lower>();
    const double sum_y = total.y - per_fold[f].y;
    const Eigen::VectorXd mean_x = sum_x / m;
    const double mean_y = sum_y / m;
    // Centred cross products, then standardised: S = D^-1 C D^-1 with D = diag(sd).
    Eigen::MatrixXd centred = sum_xx - m * mean_x * mean_x.transpose();
    Eigen::VectorXd centred_xy = sum_xy - m * mean_x * mean_y;
    Eigen::VectorXd sd(dim);
    std::vector<Eigen::Index> kept;
    for (Eigen::Index j = 0; j < dim; ++j) {
      const double variance = centred(j, j) / m;
      // A constant feature (within rounding of its own scale) carries nothing.
      const double scale = std::abs(mean_x[j] + shift_x[j]) + 1;
      sd[j] = variance > 1e-24 * scale * scale ? std::sqrt(variance) : 0;
      if (sd[j] > 0) kept.push_back(j);
    }
    Eigen::VectorXd w = Eigen::VectorXd::Zero(dim);
    if (!kept.empty()) {
      const auto q = static_cast<Eigen::Index>(kept.size());
      Eigen::MatrixXd a(q, q);
      Eigen::VectorXd b(q);
      for (Eigen::Index r = 0; r < q; ++r) {
        for (Eigen::Index c = 0; c < q; ++c) {
          a(r, c) = centred(kept[r], kept[c]) / (sd[kept[r]] * sd[kept[c]]);
        }
        a(r, r) += options.ridge * m;
        b[r] = centred_xy[kept[r]] / sd[kept[r]];
      }
      const Eigen::VectorXd beta = a.ldlt().solve(b);
      for (Eigen::Index r = 0; r < q; ++r) w[kept[r]] = beta[r] / sd[kept[r]];
    }
    if (!w.allFinite()) return invalid_argument("the features are degenerate", "features");
    weights[f] = w;
    intercepts[f] = mean_y - w.dot(mean_x);
  }

  CupacPredictions out;
  out.folds = options.folds;
  out.prediction.resize(n);
  double sse = 0, sst = 0;
  const double mean_y_all = n > 0 ? total.y / static_cast<double>(n) : 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t f = fold_of_user[i];
    double predicted = intercepts[f];
    for (std::size_t j = 0; j < k; ++j) {
      predicted += weights[f][static_cast<Eigen::Index>(j)] *
                   (features[i * k + j] - shift_x[static_cast<Eigen::Index>(j)]);
    }
    const double y = outcome[i] - shift_y;
    sse += (y - predicted) * (y - predicted);
    sst += (y - mean_y_all) * (y - mean_y_all);
    out.prediction[i] = predicted + shift_y;
  }
  out.cross_validated_r2 = sst > 0 ? 1 - sse / sst : 0;
  return out;
}

}  // namespace fulcrum::stats
