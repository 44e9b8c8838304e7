#pragma once
// How tlkit optimizers carry out an update on CPU tensors.
//
// kAuto (the default) updates each dense, contiguous float32/float64 CPU parameter with a fused
// single-pass kernel: one loop reads the parameter, its gradient and its state once and writes the
// parameter and state once, with no temporaries. Every other case (CUDA, half/bfloat16, strided
// views, mixed dtypes) takes the tensor-op path, which has the same semantics.
// kTensorOps forces the tensor-op path everywhere: for tests and side-by-side measurements.
//
// Adam and AdamW also have a multi-tensor ("foreach") path, as torch.optim's foreach=True: each
// step of the update is one at::_foreach_* call over all parameters of a group (same device and
// dtype) instead of one op per tensor. kAuto takes it for parameters that are not on the CPU (on
// CUDA each foreach call is one kernel launch over every tensor); kForeach forces it everywhere
// (on the CPU LibTorch runs it tensor by tensor: for tests). Same semantics as the other paths.
//
// LibTorch 2.x has fused kernels of its own for Adam, AdamW and SGD (at::_fused_adam_, ...; CPU
// and CUDA). kAuto takes them where LibTorch has them: for CUDA parameters (in place of the
// foreach path) and for dense contiguous float32/float64 CPU parameters, where they measured
// 8-18% faster than tlkit's own kernel on LibTorch 2.6 (bench/results/optim_fused_torch26.md).
// kOwn keeps tlkit's own kernels (fused on the CPU, foreach elsewhere: kAuto on LibTorch 1.13).
// kTorchFused forces LibTorch's for those three optimizers (an error on LibTorch 1.13, which has
// none; the other optimizers take the tensor-op path).

#include <cstdint>

namespace tlkit::optim {

enum class KernelMode { kAuto, kOwn, kTensorOps, kForeach, kTorchFused };

// Process-wide setting, read at each step; thread-safe.
void set_kernel_mode(KernelMode mode);
KernelMode kernel_mode();

// Number of parameter updates done by the fused CPU kernel since the program started (to check
// that the fast path is taken).
std::uint64_t fused_update_count();
// Number of parameter updates done by the multi-tensor (foreach) path since the program started.
std::uint64_t foreach_update_count();
// Number of parameter updates done by LibTorch's fused kernels since the program started.
std::uint64_t torch_fused_update_count();
// Whether this LibTorch has fused optimizer kernels (2.x: true; 1.13: false).
bool torch_fused_kernels_available();

// Sets the kernel mode for a scope and restores the previous one on exit.
class ScopedKernelMode {
 public:
  explicit ScopedKernelMode(KernelMode mode) : previous_(kernel_mode()) { set_kernel_mode(mode); }
  ~ScopedKernelMode() { set_kernel_mode(previous_); }
  ScopedKernelMode(const ScopedKernelMode&) = delete;
  ScopedKernelMode& operator=(const ScopedKernelMode&) = delete;

 private:
  KernelMode previous_;
};

}  // namespace tlkit::optim
