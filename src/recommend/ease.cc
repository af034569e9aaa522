#include "recommend/ease.h"

#include <cmath>

namespace fulcrum {

Eigen::MatrixXd gram_matrix(const Eigen::MatrixXd& user_item) {
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(user_item.cols(), user_item.cols());
  gram.selfadjointView<Eigen::Lower>().rankUpdate(user_item.transpose());
  return gram.selfadjointView<Eigen::Lower>();
}

Result<Eigen::MatrixXd> fit_ease(const Eigen::MatrixXd& gram, double lambda) {
  if (!(lambda > 0) || !std::isfinite(lambda)) {
    return invalid_argument("lambda must be a positive number", "lambda");
  }
  if (gram.rows() != gram.cols()) return invalid_argument("gram matrix must be square", "gram");
  const Eigen::Index n = gram.rows();
  Eigen::MatrixXd regularised = gram;
  regularised.diagonal().array() += lambda;
  // G + lambda I is symmetric positive definite for lambda > 0, so LLT is exact and cheap.
  Eigen::LLT<Eigen::MatrixXd> llt(regularised);
  if (llt.info() != Eigen::Success) return internal_error("EASE: Cholesky factorisation failed");
  Eigen::MatrixXd precision = llt.solve(Eigen::MatrixXd::Identity(n, n));
  Eigen::MatrixXd weights(n, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    weights.col(j) = -precision.col(j) / precision(j, j);
    weights(j, j) = 0.0;
  }
  return weights;
}

}  // namespace fulcrum
