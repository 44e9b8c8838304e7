#pragma once
// Gradient clipping, applied by the trainer after the gradients are averaged (and unscaled),
// before the callbacks and the optimizer step. Three rules, each threshold > 0:
//
//   norm   the global L2 norm of every gradient together is scaled down to at most the threshold
//          (torch.nn.utils.clip_grad_norm_)
//   value  every gradient element clamped to [-threshold, threshold]
//          (torch.nn.utils.clip_grad_value_)
//   agc    adaptive gradient clipping (Brock et al. 2021, "High-Performance Large-Scale Image
//          Recognition Without Normalization"; timm's adaptive_clip_grad): per unit (a row of a
//          weight: the output channel, over every other dimension; the whole of a 1-D
//          parameter), with max = max(||W_i||, 1e-3) x threshold,
//              G_i <- G_i x max / max(||G_i||, 1e-6)   when ||G_i|| >= max, else unchanged.

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::train {

enum class GradClipMode { kNorm, kValue, kAgc };

// "norm" | "value" | "agc"; throws tlkit::Error naming the choices.
GradClipMode parse_grad_clip_mode(const std::string& name);
std::string grad_clip_mode_name(GradClipMode mode);

// Clips the gradients of `parameters` (those without a gradient are left out) in place.
void clip_gradients(const std::vector<at::Tensor>& parameters, GradClipMode mode, double threshold);

}  // namespace tlkit::train
