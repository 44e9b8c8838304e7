#pragma once
// Multinomial logistic regression with an L2 penalty: the exact fit of a head that is one fully
// connected layer (finetune's stage 1, a linear probe).
//
//   minimise  (1/n) sum_i CE(W x_i + b, y_i) + l2 ||W||^2      (the bias is not penalised)
//
// by torch::optim::LBFGS with a strong-Wolfe line search and the gradient in closed form
// (softmax(logits) - onehot(y), no autograd graph).
//
// Fewer images than features (n < d): the optimum lies in the row space of X (representer
// theorem: at the optimum 2 l2 W = -G^T X, G the logits' gradient), so with an orthonormal basis
// Q [d, r] of that space (thin QR of X^T) the problem on Z = X Q with the same penalty
// (||W' Q^T|| = ||W'||) has the optimum W = W' Q^T, the same W as the problem on X. Each
// iteration then costs n r C instead of n d C. A basis of every image's rows also holds the
// optimum of any subset of them (a cross-validation fold), so one QR serves every fold.
//
// An L2 path (logistic_path) fits the strengths strongest first, each fit starting from the
// previous strength's solution of the same fold (warm start), as glmnet and scikit-learn's
// LogisticRegressionCV do.

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::pipeline {

struct LogisticOptions {
  double l2 = 1e-3;
  std::int64_t max_iter = 500;
  // Stops when the largest gradient entry of the objective (mean loss + penalty) is below
  // tolerance_grad, or when the loss or the step changes less than tolerance_change. On VGG16
  // features (160 images, 4096 values, 10 classes, 5 folds) the cross-validated losses of the L2
  // grid come within 0.5% of a solve to 1e-12 (the grid's neighbours differ by 10% and more), in
  // a quarter of the iterations; history 10 as scikit-learn's and SciPy's L-BFGS.
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-10;
  std::int64_t history_size = 10;
};

struct LogisticFit {
  at::Tensor weight;  // [C, D]
  at::Tensor bias;    // [C]
  std::int64_t iterations = 0;
  std::int64_t evaluations = 0;  // of the loss and gradient
};

// The fit on features x [N, D] (float32 or float64; the fit has x's dtype) and labels y [N] in
// [0, num_classes), from `start` when given (its weight and bias in x's space), else from zeros.
LogisticFit fit_logistic(const at::Tensor& x, const at::Tensor& y, std::int64_t num_classes,
                         const LogisticOptions& options, const LogisticFit* start = nullptr);

// The objective above at (weight, bias), for checks.
double logistic_objective(const LogisticFit& fit, const at::Tensor& x, const at::Tensor& y,
                          double l2);

// An orthonormal basis of the row space of a feature matrix, when it has fewer rows than columns
// (else the identity: nothing to gain).
class RowSpace {
 public:
  static RowSpace of(const at::Tensor& x);
  bool reduces() const { return basis_.defined(); }
  std::int64_t dim() const;                        // r (D when it does not reduce)
  at::Tensor project(const at::Tensor& x) const;   // [N, D] -> [N, r]
  LogisticFit lift(const LogisticFit& fit) const;  // a fit on projected rows -> on the rows

 private:
  at::Tensor basis_;  // [D, r], orthonormal columns; undefined: the identity
  std::int64_t dim_ = 0;
};

// The exact fit on x by way of its row space (fit_logistic on x's projection, lifted back).
LogisticFit fit_logistic_reduced(const at::Tensor& x, const at::Tensor& y, std::int64_t num_classes,
                                 const LogisticOptions& options);

// Summed (not averaged) loss and correct count of a fit on some rows, for pooling over folds.
struct LogisticScore {
  double loss_sum = 0;
  double correct = 0;
  std::int64_t examples = 0;
  at::Tensor confusion;  // [C, C] int64, rows = true class (for balanced accuracy)
};
LogisticScore logistic_score(const LogisticFit& fit, const at::Tensor& x, const at::Tensor& y);

// One strength of an L2 path: a fit per fold (rows outside the fold), each scored on its fold's
// rows; without folds one fit on every row, scored on the held-out set when there is one.
struct LogisticPathStep {
  double l2 = 0;
  std::vector<LogisticFit> fits;
  std::vector<LogisticScore> scores;
  std::int64_t iterations = 0;  // over the fits
};

// The fits for each strength of `l2s` in the order given (strongest first makes the warm starts
// count). `fold_of` [N] (int64, folds 0..folds-1) or undefined (no folds: every row trains and
// (held_x, held_y), when defined, scores). Every fit is in x's space.
std::vector<LogisticPathStep> logistic_path(const at::Tensor& x, const at::Tensor& y,
                                            std::int64_t num_classes,
                                            const std::vector<double>& l2s,
                                            const at::Tensor& fold_of, std::int64_t folds,
                                            const at::Tensor& held_x, const at::Tensor& held_y,
                                            const LogisticOptions& options = {});

// The average of some fits (a warm start for a fit on every row from its folds' fits).
LogisticFit average_fit(const std::vector<LogisticFit>& fits);

}  // namespace tlkit::pipeline
