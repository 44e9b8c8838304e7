#pragma once
// Internal: LibTorch 2.x's own fused optimizer kernels (at::_fused_adam_, at::_fused_adamw_,
// at::_fused_sgd_: one pass over a parameter, on CPU and CUDA), behind the one version check in
// torch_fused.cpp. LibTorch 1.13 has none: torch_fused_available() is false there and the calls
// throw.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace tlkit::optim::detail {

bool torch_fused_available();

// True when `tensors` (a parameter, its gradient and state; undefined ones ignored) take torch's
// fused kernel: KernelMode::kTorchFused (an error where LibTorch has none), or kAuto (unless
// !in_auto) for CUDA
// tensors where LibTorch has them. Dense tensors of one floating dtype and device.
bool torch_fused_applies(std::initializer_list<at::Tensor> tensors, bool in_auto = true);

// One Adam (decoupled_weight_decay false) or AdamW step of `param` whose state was begun: `step`
// is the advanced step count. max_exp_avg_sq is used with amsgrad only.
void torch_fused_adam(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                      const at::Tensor& exp_avg_sq, const at::Tensor& max_exp_avg_sq,
                      std::int64_t step, double lr, double beta1, double beta2, double weight_decay,
                      double eps, bool amsgrad, bool decoupled_weight_decay);

// One SGD step; `buffer` is undefined without momentum; on the first step it is overwritten with
// the gradient (torch's clone), as torch.optim does.
void torch_fused_sgd(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& buffer,
                     double lr, double momentum, double dampening, double weight_decay,
                     bool nesterov, bool first_step);

}  // namespace tlkit::optim::detail
