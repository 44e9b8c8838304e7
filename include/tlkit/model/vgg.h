#pragma once
// tlkit::model::VGG — a native torch::nn VGG (Simonyan & Zisserman 2015, "Very Deep Convolutional
// Networks for Large-Scale Image Recognition"), laid out exactly like torchvision's so that its
// state dict names match: features.N (Conv2d[, BatchNorm2d], ReLU, ..., MaxPool2d), avgpool
// (adaptive, pool_size²), classifier.0..6 (Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear).
// Weights load from torchvision .pth files or .safetensors (tlkit/model/state_dict.h); fresh
// weights follow torchvision's init (Kaiming-normal fan_out convs, N(0, 0.01) linears, zero biases).
// Presets: "A" (vgg11), "B" (vgg13), "D" (vgg16), "E" (vgg19); kMaxPool marks a pooling step.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/pimpl.h>

namespace tlkit::model {

struct VGGOptions {
  static constexpr std::int64_t kMaxPool = -1;
  VGGOptions(std::vector<std::int64_t> cfg = preset("D")) : cfg_(std::move(cfg)) {}
  // The conv widths of configuration A, B, D or E (also accepted: vgg11, vgg13, vgg16, vgg19).
  static std::vector<std::int64_t> preset(const std::string& name);

  TORCH_ARG(std::vector<std::int64_t>, cfg);
  TORCH_ARG(bool, batch_norm) = false;
  TORCH_ARG(std::int64_t, num_classes) = 1000;
  TORCH_ARG(std::int64_t, in_channels) = 3;
  TORCH_ARG(std::int64_t, pool_size) = 7;   // avgpool output side
  TORCH_ARG(std::int64_t, hidden) = 4096;   // classifier width
  TORCH_ARG(double, dropout) = 0.5;
};

class VGGImpl : public torch::nn::Module {
 public:
  explicit VGGImpl(const VGGOptions& options = {});
  at::Tensor forward(const at::Tensor& x);
  // Loads a .pth (torch.save of a state dict) or .safetensors file; every tensor must fit.
  void load_weights(const std::filesystem::path& path);

  VGGOptions options;
  torch::nn::Sequential features{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool{nullptr};
  torch::nn::Sequential classifier{nullptr};
};
TORCH_MODULE(VGG);

}  // namespace tlkit::model
