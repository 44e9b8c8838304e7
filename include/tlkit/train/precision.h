#pragma once
// Mixed precision: the arithmetic a forward pass runs in (--precision fp32|tf32|bf16|fp16, as
// torch.autocast), channels-last memory layout (--channels-last), and a dynamic loss scaler for
// fp16 (as torch.cuda.amp.GradScaler: scale the loss, unscale the gradients before clipping, skip
// a step whose gradients hold an inf or NaN, back off, grow again).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include <tlkit/train/network.h>

namespace tlkit::train {

enum class Precision {
  kFp32,  // float32 everywhere
  kTf32,  // float32 tensors, TensorFloat-32 matrix units for matmul and convolution (CUDA)
  kBf16,  // autocast to bfloat16 (CUDA and CPU)
  kFp16,  // autocast to float16 (CUDA), with loss scaling
};

// "fp32" | "tf32" | "bf16" | "fp16" (also "float32", "bfloat16", "float16"); throws otherwise.
Precision parse_precision(const std::string& name);
std::string precision_name(Precision precision);

// Throws when `precision` cannot run on `device`: tf32 and fp16 need CUDA (tf32 is a mode of
// NVIDIA's matrix units; CPU autocast in the LibTorch versions tlkit supports is bfloat16).
void check_precision(Precision precision, const c10::Device& device);

// Autocast on for `device`'s type while alive (bf16, fp16); for tf32 the TF32 matmul and cuDNN
// switches are set while alive; nothing for fp32. Restores the previous state on destruction.
class AutocastGuard {
 public:
  AutocastGuard(Precision precision, const c10::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  Precision precision_;
  c10::DeviceType device_type_;
  bool was_enabled_ = false;
  int previous_dtype_ = 0;
  bool was_tf32_cublas_ = false, was_tf32_cudnn_ = false;
};

// Converts every 4-D parameter and buffer of `network` to channels-last (or back to contiguous)
// in place, so a convolution meets channels-last weights and inputs.
void set_channels_last(Network& network, bool channels_last);

// A network run at a precision: forward converts 4-D inputs to channels-last when asked, runs the
// wrapped network under autocast and returns float32 logits; everything else is the wrapped
// network's (its state, parameters and mode).
class PrecisionNetwork : public Network {
 public:
  PrecisionNetwork(Network& inner, Precision precision, bool channels_last, c10::Device device);
  torch::Tensor forward(const torch::Tensor& input) override;
  void train(bool on) override;
  bool is_training() const override { return inner_.is_training(); }
  std::vector<torch::Tensor> parameters() const override { return inner_.parameters(); }
  NamedTensors named_state() const override { return inner_.named_state(); }
  void to(const torch::Device& device) override;
  Network& inner() { return inner_; }

 private:
  Network& inner_;
  Precision precision_;
  bool channels_last_;
  c10::Device device_;
};

struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16, torch's default
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;  // finite steps in a row before the scale grows
};

// Dynamic loss scaling. Per step: backward on scale(loss); unscale(params) divides the gradients
// by the scale in place and reports whether any is inf/NaN; update(found) then backs the scale off
// (found: the step must be skipped) or counts towards growth.
class LossScaler {
 public:
  explicit LossScaler(LossScalerOptions options = {});
  torch::Tensor scale(const torch::Tensor& loss) const;
  // Divides every defined gradient by the scale; true when any gradient holds an inf or NaN.
  bool unscale(const std::vector<torch::Tensor>& params) const;
  void update(bool found_nonfinite);

  double scale_value() const { return scale_; }
  std::int64_t growth_tracker() const { return growth_tracker_; }
  std::int64_t skipped_steps() const { return skipped_; }
  // The state an exact resume needs.
  void set_state(double scale, std::int64_t growth_tracker, std::int64_t skipped);

 private:
  LossScalerOptions options_;
  double scale_;
  std::int64_t growth_tracker_ = 0;
  std::int64_t skipped_ = 0;
};

// oneDNN's bfloat16 convolution on some x86 CPUs is wrong when out_channels is not a multiple of
// 16 (pytorch/pytorch#163347). Runs a small bf16 convolution with `out_channels` outputs on the
// CPU under autocast, on inputs that bfloat16 holds exactly, and returns its largest error
// relative to the float32 convolution of the same inputs: about 0.4% is the output's rounding to
// bfloat16, a few percent a kernel that accumulates in bfloat16 (LibTorch 1.13 on CPUs without
// AVX512-BF16: 5-7%), tens of percent the bug.
double cpu_bf16_convolution_error(std::int64_t out_channels);

// The convolution weights of `network` (4-D "....weight" tensors) whose output-channel count
// `probe` (by default cpu_bf16_convolution_error, once per distinct count that is not a multiple
// of 16) finds more than 10% wrong in bf16, as "name (N output channels: E% error)".
std::vector<std::string> bf16_unsafe_convolutions(
    const Network& network,
    const std::function<double(std::int64_t)>& probe = cpu_bf16_convolution_error);

// Throws, naming the layers, when bf16 on the CPU would compute some convolution of `network`
// wrongly (see above); nothing for other precisions or devices.
void check_bf16_convolutions(const Network& network, Precision precision,
                             const c10::Device& device);

}  // namespace tlkit::train
