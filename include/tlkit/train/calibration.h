#pragma once
// Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one scalar
// T > 0 that divides a classifier's logits, fitted on held-out predictions to minimise their NLL,
//   T* = argmin_T  mean_i [ logsumexp_c(z_ic / T) - z_iy / T ].
// The NLL is convex in s = 1 / T (its second derivative is the mean variance of z under
// softmax(s z)), so the fit is a safeguarded Newton iteration on s in float64. The argmax, hence
// the accuracy, is unchanged; only the probabilities move. Log-probabilities can be given instead
// of logits: a row's constant shift does not change softmax(z / T).

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace tlkit::train {

// The temperatures the fit may return; an optimum outside is cut to the bound (at_bound): e.g.
// held-out predictions that are all right with wide margins want T -> 0.
inline constexpr double kMinTemperature = 0.05;
inline constexpr double kMaxTemperature = 20.0;

struct TemperatureFit {
  double temperature = 1;
  double nll_before = 0;  // mean NLL at T = 1
  double nll_after = 0;   // at the fitted T
  std::int64_t iterations = 0;
  bool at_bound = false;  // the optimum lies outside [kMinTemperature, kMaxTemperature]
};

// Fits T on `scores` [N, C] (logits or log-probabilities) with `labels` [N] (class indices).
TemperatureFit fit_temperature(const at::Tensor& scores, const at::Tensor& labels);

// softmax(scores / T)'s log: the calibrated log-probabilities, float64.
at::Tensor calibrated_log_probabilities(const at::Tensor& scores, double temperature);

}  // namespace tlkit::train
