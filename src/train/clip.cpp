#include <tlkit/train/clip.h>

#include <numeric>

#include <ATen/ATen.h>
#include <torch/types.h>  // before clip_grad.h, which uses torch::Tensor without it

#include <torch/nn/utils/clip_grad.h>

#include <tlkit/core/error.h>

namespace tlkit::train {
namespace {

// timm's unitwise_norm: the norm per output unit (dimension 0) for tensors of 2 or more
// dimensions, kept broadcastable; the whole tensor's norm otherwise.
at::Tensor unitwise_norm(const at::Tensor& x) {
  if (x.dim() <= 1) return x.norm(2);
  std::vector<std::int64_t> dims(static_cast<size_t>(x.dim() - 1));
  std::iota(dims.begin(), dims.end(), std::int64_t{1});
  return x.norm(2, dims, /*keepdim=*/true);
}

void adaptive_clip(const std::vector<at::Tensor>& parameters, double clip_factor) {
  constexpr double kEps = 1e-3;
  at::NoGradGuard no_grad;
  for (const auto& p : parameters) {
    if (!p.grad().defined()) continue;
    auto grad = p.mutable_grad();
    const auto max_norm = unitwise_norm(p.detach()).clamp_min(kEps).mul_(clip_factor);
    const auto grad_norm = unitwise_norm(grad);
    const auto clipped = grad * (max_norm / grad_norm.clamp_min(1e-6));
    grad.copy_(at::where(grad_norm < max_norm, grad, clipped));
  }
}

}  // namespace

GradClipMode parse_grad_clip_mode(const std::string& name) {
  if (name == "norm") return GradClipMode::kNorm;
  if (name == "value") return GradClipMode::kValue;
  if (name == "agc") return GradClipMode::kAgc;
  fail("gradient clipping mode must be norm, value or agc, got '", name, "'");
}

std::string grad_clip_mode_name(GradClipMode mode) {
  switch (mode) {
    case GradClipMode::kValue:
      return "value";
    case GradClipMode::kAgc:
      return "agc";
    case GradClipMode::kNorm:
      break;
  }
  return "norm";
}

void clip_gradients(const std::vector<at::Tensor>& parameters, GradClipMode mode,
                    double threshold) {
  TLKIT_CHECK(threshold > 0, "the gradient clipping threshold must be positive, got ", threshold);
  switch (mode) {
    case GradClipMode::kNorm:
      torch::nn::utils::clip_grad_norm_(parameters, threshold);
      return;
    case GradClipMode::kValue:
      torch::nn::utils::clip_grad_value_(parameters, threshold);
      return;
    case GradClipMode::kAgc:
      adaptive_clip(parameters, threshold);
      return;
  }
}

}  // namespace tlkit::train
