// The process-wide kernel mode and the test of when the fused CPU kernel applies.

#include <tlkit/optim/kernel_mode.h>

#include <atomic>

#include "kernel_util.h"
#include "torch_fused.h"

namespace tlkit::optim {
namespace {
std::atomic<KernelMode> g_kernel_mode{KernelMode::kAuto};
std::atomic<std::uint64_t> g_fused_updates{0};
std::atomic<std::uint64_t> g_foreach_updates{0};
std::atomic<std::uint64_t> g_torch_fused_updates{0};
}  // namespace

void set_kernel_mode(KernelMode mode) { g_kernel_mode.store(mode, std::memory_order_relaxed); }

KernelMode kernel_mode() { return g_kernel_mode.load(std::memory_order_relaxed); }

std::uint64_t fused_update_count() { return g_fused_updates.load(std::memory_order_relaxed); }

std::uint64_t foreach_update_count() { return g_foreach_updates.load(std::memory_order_relaxed); }

std::uint64_t torch_fused_update_count() {
  return g_torch_fused_updates.load(std::memory_order_relaxed);
}

bool torch_fused_kernels_available() { return detail::torch_fused_available(); }

namespace detail {

void finish_fused_update(const at::Tensor& param) {
  param.unsafeGetTensorImpl()->bump_version();
  g_fused_updates.fetch_add(1, std::memory_order_relaxed);
}

void count_foreach_updates(std::uint64_t params) {
  g_foreach_updates.fetch_add(params, std::memory_order_relaxed);
}

void count_torch_fused_updates(std::uint64_t params) {
  g_torch_fused_updates.fetch_add(params, std::memory_order_relaxed);
}

bool foreach_applies(const at::Tensor& param) {
  const auto mode = kernel_mode();
  return mode == KernelMode::kForeach ||
         ((mode == KernelMode::kAuto || mode == KernelMode::kOwn) && !param.device().is_cpu());
}

bool fused_cpu_applies(std::initializer_list<at::Tensor> tensors) {
  const auto mode = kernel_mode();
  if ((mode != KernelMode::kAuto && mode != KernelMode::kOwn) || tensors.size() == 0) return false;
  const at::Tensor& first = *tensors.begin();
  const auto dtype = first.scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble) return false;
  for (const at::Tensor& tensor : tensors) {
    if (!tensor.defined()) continue;
    const bool usable = tensor.device().is_cpu() && tensor.layout() == at::kStrided &&
                        tensor.scalar_type() == dtype && tensor.numel() == first.numel() &&
                        tensor.is_contiguous() && !tensor.is_neg() && !tensor.is_conj();
    if (!usable) return false;
  }
  return true;
}

}  // namespace detail
}  // namespace tlkit::optim
