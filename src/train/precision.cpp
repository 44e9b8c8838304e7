#include <tlkit/train/precision.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>

#include "autocast_compat.h"

namespace tlkit::train {

Precision parse_precision(const std::string& name) {
  if (name == "fp32" || name == "float32") return Precision::kFp32;
  if (name == "tf32") return Precision::kTf32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBf16;
  if (name == "fp16" || name == "float16" || name == "half") return Precision::kFp16;
  fail("unknown precision '", name, "'; use fp32, tf32, bf16 or fp16");
}

std::string precision_name(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kTf32:
      return "tf32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "fp32";
}

void check_precision(Precision precision, const c10::Device& device) {
  if (device.is_cuda()) return;
  TLKIT_CHECK(precision != Precision::kTf32,
              "--precision tf32 is a mode of NVIDIA GPUs' matrix units; on ", device.str(),
              " use fp32 (or bf16)");
  TLKIT_CHECK(precision != Precision::kFp16, "--precision fp16 needs a CUDA device; on ",
              device.str(), " use bf16 (autocast to bfloat16) or fp32");
  TLKIT_CHECK(precision == Precision::kFp32 || device.is_cpu(), "--precision ",
              precision_name(precision), " is supported on CPU and CUDA devices, not ",
              device.str());
}

namespace {
at::ScalarType autocast_type(Precision precision) {
  return precision == Precision::kFp16 ? at::kHalf : at::kBFloat16;
}
bool autocasts(Precision precision) {
  return precision == Precision::kBf16 || precision == Precision::kFp16;
}
}  // namespace

AutocastGuard::AutocastGuard(Precision precision, const c10::Device& device)
    : precision_(precision), device_type_(device.type()) {
  if (autocasts(precision_)) {
    was_enabled_ = compat::autocast_enabled(device_type_);
    previous_dtype_ = static_cast<int>(compat::autocast_dtype(device_type_));
    compat::set_autocast_enabled(device_type_, true);
    compat::set_autocast_dtype(device_type_, autocast_type(precision_));
    at::autocast::increment_nesting();
  } else if (precision_ == Precision::kTf32) {
    auto& context = at::globalContext();
    was_tf32_cublas_ = context.allowTF32CuBLAS();
    was_tf32_cudnn_ = context.allowTF32CuDNN();
    context.setAllowTF32CuBLAS(true);
    context.setAllowTF32CuDNN(true);
  }
}

AutocastGuard::~AutocastGuard() {
  if (autocasts(precision_)) {
    // The outermost region drops autocast's cache of cast weights (they change every step).
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    compat::set_autocast_enabled(device_type_, was_enabled_);
    compat::set_autocast_dtype(device_type_, static_cast<at::ScalarType>(previous_dtype_));
  } else if (precision_ == Precision::kTf32) {
    auto& context = at::globalContext();
    context.setAllowTF32CuBLAS(was_tf32_cublas_);
    context.setAllowTF32CuDNN(was_tf32_cudnn_);
  }
}

void set_channels_last(Network& network, bool channels_last) {
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::NoGradGuard no_grad;
  for (auto& entry : network.named_state()) {
    auto& tensor = entry.second;
    if (tensor.dim() != 4 || tensor.is_contiguous(format)) continue;
    tensor.set_data(tensor.contiguous(format));
  }
}

PrecisionNetwork::PrecisionNetwork(Network& inner, Precision precision, bool channels_last,
                                   c10::Device device)
    : inner_(inner), precision_(precision), channels_last_(channels_last), device_(device) {
  check_precision(precision_, device_);
  set_dropout(inner_.dropout_enabled());
  set_batch_norm_updates(inner_.batch_norm_updates());
}

torch::Tensor PrecisionNetwork::forward(const torch::Tensor& input) {
  auto x =
      channels_last_ && input.dim() == 4 ? input.contiguous(at::MemoryFormat::ChannelsLast) : input;
  if (precision_ == Precision::kFp32) return inner_.forward(x);
  at::Tensor output;
  {
    AutocastGuard autocast(precision_, device_);
    output = inner_.forward(x);
  }
  // Losses and softmax in float32, as torch.autocast leaves them.
  if (output.scalar_type() == at::kHalf || output.scalar_type() == at::kBFloat16)
    output = output.to(at::kFloat);
  return output;
}

void PrecisionNetwork::train(bool on) {
  inner_.set_dropout(dropout_enabled());
  inner_.set_batch_norm_updates(batch_norm_updates());
  inner_.train(on);
}

void PrecisionNetwork::to(const torch::Device& device) {
  inner_.to(device);
  device_ = device;
  if (channels_last_) set_channels_last(inner_, true);
}

LossScaler::LossScaler(LossScalerOptions options) : options_(options), scale_(options.init_scale) {
  TLKIT_CHECK(std::isfinite(options_.init_scale) && options_.init_scale > 0,
              "the loss scale must be positive and finite, got ", options_.init_scale);
  TLKIT_CHECK(options_.growth_factor > 1, "the loss scale's growth factor must exceed 1, got ",
              options_.growth_factor);
  TLKIT_CHECK(options_.backoff_factor > 0 && options_.backoff_factor < 1,
              "the loss scale's backoff factor must be in (0, 1), got ", options_.backoff_factor);
  TLKIT_CHECK(options_.growth_interval > 0, "the loss scale's growth interval must be positive");
}

torch::Tensor LossScaler::scale(const torch::Tensor& loss) const { return loss * scale_; }

bool LossScaler::unscale(const std::vector<torch::Tensor>& params) const {
  at::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  std::vector<at::Tensor> finite;
  for (const auto& p : params) {
    auto grad = p.grad();
    if (!grad.defined()) continue;
    grad.mul_(inverse);
    finite.push_back(grad.isfinite().all());
  }
  return !finite.empty() && !at::stack(finite).all().item<bool>();
}

void LossScaler::update(bool found_nonfinite) {
  if (found_nonfinite) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
    ++skipped_;
    return;
  }
  if (++growth_tracker_ == options_.growth_interval) {
    // float32 scales, as torch's: never grown past what float32 holds.
    const double grown = scale_ * options_.growth_factor;
    if (std::isfinite(static_cast<float>(grown))) scale_ = grown;
    growth_tracker_ = 0;
  }
}

void LossScaler::set_state(double scale, std::int64_t growth_tracker, std::int64_t skipped) {
  TLKIT_CHECK(std::isfinite(scale) && scale > 0, "a saved loss scale must be positive, got ",
              scale);
  scale_ = scale;
  growth_tracker_ = growth_tracker;
  skipped_ = skipped;
}

double cpu_bf16_convolution_error(std::int64_t out_channels) {
  at::NoGradGuard no_grad;
  // Deterministic inputs (the global generator is left alone: runs stay reproducible), already
  // representable in bfloat16, so a correct bf16 convolution (float32 accumulation) matches the
  // float32 one to float32 rounding and any larger difference is the kernel's.
  const auto input = at::sin(at::arange(2 * 16 * 12 * 12, at::kFloat) * 0.37)
                         .view({2, 16, 12, 12})
                         .to(at::kBFloat16)
                         .to(at::kFloat);
  const auto weight = (at::cos(at::arange(out_channels * 16 * 9, at::kFloat) * 0.11) * 0.1)
                          .view({out_channels, 16, 3, 3})
                          .to(at::kBFloat16)
                          .to(at::kFloat);
  const auto reference = at::conv2d(input, weight, {}, 1, 1);
  at::Tensor low;
  {
    AutocastGuard autocast(Precision::kBf16, c10::Device(c10::kCPU));
    low = at::conv2d(input, weight, {}, 1, 1).to(at::kFloat);
  }
  return (low - reference).abs().max().item<double>() /
         std::max(reference.abs().max().item<double>(), 1e-12);
}

std::vector<std::string> bf16_unsafe_convolutions(
    const Network& network, const std::function<double(std::int64_t)>& probe) {
  std::map<std::int64_t, double> error_of;  // one probe per output-channel count
  std::vector<std::string> unsafe;
  const std::string suffix = ".weight";
  for (const auto& [name, tensor] : network.named_state()) {
    if (tensor.dim() != 4 || name.size() < suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const auto out_channels = tensor.size(0);
    if (out_channels % 16 == 0) continue;
    auto found = error_of.find(out_channels);
    if (found == error_of.end()) found = error_of.emplace(out_channels, probe(out_channels)).first;
    if (found->second > 0.1) {
      char text[96];
      std::snprintf(text, sizeof(text), " (%lld output channels: %.0f%% error)",
                    static_cast<long long>(out_channels), 100 * found->second);
      unsafe.push_back(name.substr(0, name.size() - suffix.size()) + text);
    }
  }
  return unsafe;
}

void check_bf16_convolutions(const Network& network, Precision precision,
                             const c10::Device& device) {
  if (precision != Precision::kBf16 || !device.is_cpu()) return;
  const auto unsafe = bf16_unsafe_convolutions(network);
  TLKIT_CHECK(unsafe.empty(),
              "--precision bf16: this CPU's bfloat16 convolution (oneDNN) is wrong for output "
              "channel counts that are not a multiple of 16 (pytorch/pytorch#163347), and this "
              "model has such layers: ",
              join(unsafe, ", "), ". Use --precision fp32 on this machine");
}

}  // namespace tlkit::train
