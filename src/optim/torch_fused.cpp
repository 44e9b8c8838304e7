// LibTorch's fused optimizer kernels where the LibTorch version has them (2.x), else none.

#include "torch_fused.h"

#include <vector>

#include <ATen/ATen.h>
#include <torch/version.h>

#include <tlkit/core/error.h>
#include <tlkit/optim/kernel_mode.h>

#include "kernel_util.h"

#if TORCH_VERSION_MAJOR >= 2
#define TLKIT_TORCH_FUSED 1
#endif

namespace tlkit::optim::detail {

bool torch_fused_available() {
#if defined(TLKIT_TORCH_FUSED)
  return true;
#else
  return false;
#endif
}

bool torch_fused_applies(std::initializer_list<at::Tensor> tensors, bool in_auto) {
  const auto mode = kernel_mode();
  if (mode != KernelMode::kTorchFused && (mode != KernelMode::kAuto || !in_auto)) return false;
  if (tensors.size() == 0) return false;
  const at::Tensor& first = *tensors.begin();
  if (mode == KernelMode::kAuto) {
    if (!torch_fused_available()) return false;
    // On the CPU where it was measured: dense, contiguous float32/float64.
    if (first.device().is_cpu()) {
      const auto dtype = first.scalar_type();
      if (dtype != at::kFloat && dtype != at::kDouble) return false;
      for (const at::Tensor& tensor : tensors)
        if (tensor.defined() && !tensor.is_contiguous()) return false;
    }
  }
  TLKIT_CHECK(torch_fused_available(), "KernelMode::kTorchFused: this LibTorch (", TORCH_VERSION,
              ") has no fused optimizer kernels (LibTorch 2.x has them)");
  const auto dtype = first.scalar_type();
  if (!at::isFloatingType(dtype)) return false;
  for (const at::Tensor& tensor : tensors) {
    if (!tensor.defined()) continue;
    if (tensor.layout() != at::kStrided || tensor.scalar_type() != dtype ||
        tensor.device() != first.device() || tensor.sizes() != first.sizes())
      return false;
  }
  return true;
}

void torch_fused_adam(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                      const at::Tensor& exp_avg_sq, const at::Tensor& max_exp_avg_sq,
                      std::int64_t step, double lr, double beta1, double beta2, double weight_decay,
                      double eps, bool amsgrad, bool decoupled_weight_decay) {
#if defined(TLKIT_TORCH_FUSED)
  std::vector<at::Tensor> params{param}, grads{grad}, exp_avgs{exp_avg}, exp_avg_sqs{exp_avg_sq};
  std::vector<at::Tensor> max_exp_avg_sqs;
  if (amsgrad) max_exp_avg_sqs.push_back(max_exp_avg_sq);
  // torch.optim keeps the step as a float tensor on the parameter's device.
  std::vector<at::Tensor> steps{
      at::full({}, static_cast<double>(step), param.options().dtype(at::kFloat))};
  if (decoupled_weight_decay)
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1,
                      beta2, weight_decay, eps, amsgrad, /*maximize=*/false);
  else
    at::_fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2,
                     weight_decay, eps, amsgrad, /*maximize=*/false);
  param.unsafeGetTensorImpl()->bump_version();  // as tlkit's own kernel does (autograd's check)
  count_torch_fused_updates(1);
#else
  (void)param, (void)grad, (void)exp_avg, (void)exp_avg_sq, (void)max_exp_avg_sq, (void)step;
  (void)lr, (void)beta1, (void)beta2, (void)weight_decay, (void)eps, (void)amsgrad;
  (void)decoupled_weight_decay;
  fail("torch_fused_adam: this LibTorch has no fused optimizer kernels");
#endif
}

void torch_fused_sgd(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& buffer,
                     double lr, double momentum, double dampening, double weight_decay,
                     bool nesterov, bool first_step) {
#if defined(TLKIT_TORCH_FUSED)
  std::vector<at::Tensor> params{param}, grads{grad}, buffers;
  if (momentum != 0) buffers.push_back(buffer);
  at::_fused_sgd_(params, grads, buffers, weight_decay, momentum, lr, dampening, nesterov,
                  /*maximize=*/false, first_step);
  param.unsafeGetTensorImpl()->bump_version();
  count_torch_fused_updates(1);
#else
  (void)param, (void)grad, (void)buffer, (void)lr, (void)momentum, (void)dampening;
  (void)weight_decay, (void)nesterov, (void)first_step;
  fail("torch_fused_sgd: this LibTorch has no fused optimizer kernels");
#endif
}

}  // namespace tlkit::optim::detail
