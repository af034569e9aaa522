// EASE item-item model (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data",
// eq. 8): with P = (X^T X + lambda I)^-1, the weights are B = I - P diag(1/diag(P)), i.e.
// B_ij = -P_ij / P_jj off the diagonal and 0 on it. A user's score for item j is x_u . B_:j.
// Pure functions over Eigen matrices; the callers build X from usage events.
#pragma once

#include <Eigen/Dense>

#include "core/status.h"

namespace fulcrum {

// Gram matrix G = X^T X of a users x items implicit-feedback matrix.
Eigen::MatrixXd gram_matrix(const Eigen::MatrixXd& user_item);

// Closed-form EASE weights from the Gram matrix. lambda > 0 (L2 strength) is required.
Result<Eigen::MatrixXd> fit_ease(const Eigen::MatrixXd& gram, double lambda);

}  // namespace fulcrum
