#include <tlkit/train/calibration.h>

#include <cmath>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>

namespace tlkit::train {
namespace {

// The NLL g(s) of softmax(s z) and its first two derivatives in s:
//   g'(s) = mean_i (E_p[z_i] - z_iy),  g''(s) = mean_i Var_p(z_i) >= 0.
struct Objective {
  double value = 0, slope = 0, curvature = 0;
};

Objective objective(const at::Tensor& z, const at::Tensor& z_true, double s) {
  const auto scaled = z * s;
  const auto log_p = at::log_softmax(scaled, 1);
  const auto p = log_p.exp();
  const auto mean_z = (p * z).sum(1);
  const auto var_z = (p * z * z).sum(1) - mean_z * mean_z;
  Objective o;
  o.value = (at::logsumexp(scaled, {1}) - z_true * s).mean().item<double>();
  o.slope = (mean_z - z_true).mean().item<double>();
  o.curvature = var_z.clamp_min(0).mean().item<double>();
  return o;
}

}  // namespace

TemperatureFit fit_temperature(const at::Tensor& scores, const at::Tensor& labels) {
  TLKIT_CHECK(scores.dim() == 2 && scores.size(0) > 0 && scores.size(1) >= 2,
              "temperature scaling needs [N, C] scores with N >= 1 and C >= 2, got ",
              scores.sizes());
  TLKIT_CHECK(labels.dim() == 1 && labels.size(0) == scores.size(0),
              "temperature scaling needs one label per row of scores: ", labels.sizes(), " for ",
              scores.sizes());
  const auto z = scores.detach().to(at::kCPU, at::kDouble).contiguous();
  TLKIT_CHECK(at::isfinite(z).all().item<bool>(), "temperature scaling: the scores hold NaN/Inf");
  const auto y = labels.to(at::kCPU, at::kLong);
  TLKIT_CHECK(y.min().item<std::int64_t>() >= 0 && y.max().item<std::int64_t>() < z.size(1),
              "temperature scaling: labels must be class indices in 0..", z.size(1) - 1);
  const auto z_true = z.gather(1, y.unsqueeze(1)).squeeze(1);

  TemperatureFit fit;
  fit.nll_before = objective(z, z_true, 1.0).value;
  // s = 1 / T in [lo, hi]; g is convex, so g' is increasing: its sign at the ends brackets the
  // optimum, or says it lies beyond a bound.
  double lo = 1.0 / kMaxTemperature, hi = 1.0 / kMinTemperature;
  const auto at_lo = objective(z, z_true, lo), at_hi = objective(z, z_true, hi);
  double s = 0;
  if (at_lo.slope >= 0) {
    s = lo;
    fit.at_bound = true;
  } else if (at_hi.slope <= 0) {
    s = hi;
    fit.at_bound = true;
  } else {
    s = 1.0;
    for (fit.iterations = 1; fit.iterations <= 200; ++fit.iterations) {
      const auto o = objective(z, z_true, s);
      if (o.slope < 0) lo = s; else hi = s;
      if (std::abs(o.slope) <= 1e-14 * (1 + std::abs(o.value)) || hi - lo <= 1e-15 * hi) break;
      // Newton's step s - g'/g'', or the bracket's midpoint where it leaves the bracket.
      double next = o.curvature > 0 ? s - o.slope / o.curvature : std::nan("");
      if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
      if (next == s) break;
      s = next;
    }
  }
  fit.temperature = 1.0 / s;
  fit.nll_after = objective(z, z_true, s).value;
  return fit;
}

at::Tensor calibrated_log_probabilities(const at::Tensor& scores, double temperature) {
  TLKIT_CHECK(temperature > 0 && std::isfinite(temperature), "a temperature must be > 0, got ",
              temperature);
  return at::log_softmax(scores.detach().to(at::kDouble) / temperature, 1);
}

}  // namespace tlkit::train
