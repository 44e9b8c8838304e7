#include <tlkit/model/vgg.h>

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include <tlkit/core/error.h>
#include <tlkit/model/state_dict.h>

namespace tlkit::model {

std::vector<std::int64_t> VGGOptions::preset(const std::string& name) {
  constexpr std::int64_t M = kMaxPool;
  if (name == "A" || name == "vgg11") return {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M};
  if (name == "B" || name == "vgg13") return {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M};
  if (name == "D" || name == "vgg16") {
    return {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M};
  }
  if (name == "E" || name == "vgg19") {
    return {64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M};
  }
  fail("unknown VGG configuration '", name, "'; use A (vgg11), B (vgg13), D (vgg16) or E (vgg19)");
}

VGGImpl::VGGImpl(const VGGOptions& options_) : options(options_) {
  namespace nn = torch::nn;
  TLKIT_CHECK(!options.cfg().empty(), "VGG: empty layer configuration");
  TLKIT_CHECK(options.num_classes() >= 1 && options.in_channels() >= 1 && options.pool_size() >= 1 &&
                  options.hidden() >= 1,
              "VGG: num_classes, in_channels, pool_size and hidden must all be positive");
  features = nn::Sequential();
  std::int64_t channels = options.in_channels();
  for (const auto v : options.cfg()) {
    if (v == VGGOptions::kMaxPool) {
      features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
      continue;
    }
    TLKIT_CHECK(v > 0, "VGG: layer width ", v, " in cfg must be positive (or kMaxPool)");
    features->push_back(nn::Conv2d(nn::Conv2dOptions(channels, v, 3).padding(1)));
    if (options.batch_norm()) features->push_back(nn::BatchNorm2d(v));
    features->push_back(nn::ReLU(nn::ReLUOptions(true)));
    channels = v;
  }
  avgpool = nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({options.pool_size(), options.pool_size()}));
  const std::int64_t flat = channels * options.pool_size() * options.pool_size();
  classifier = nn::Sequential(nn::Linear(flat, options.hidden()), nn::ReLU(nn::ReLUOptions(true)),
                              nn::Dropout(options.dropout()), nn::Linear(options.hidden(), options.hidden()),
                              nn::ReLU(nn::ReLUOptions(true)), nn::Dropout(options.dropout()),
                              nn::Linear(options.hidden(), options.num_classes()));
  register_module("features", features);
  register_module("avgpool", avgpool);
  register_module("classifier", classifier);

  // torchvision's VGG initialisation.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0, torch::kFanOut, torch::kReLU);
      nn::init::zeros_(conv->bias);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    } else if (auto* linear = module->as<nn::Linear>()) {
      nn::init::normal_(linear->weight, 0, 0.01);
      nn::init::zeros_(linear->bias);
    }
  }
}

at::Tensor VGGImpl::forward(const at::Tensor& x) {
  TLKIT_CHECK(x.dim() == 4 && x.size(1) == options.in_channels(), "VGG takes images of shape [N, ",
              options.in_channels(), ", H, W]; got ", x.sizes());
  auto y = avgpool(features->forward(x));
  return classifier->forward(y.flatten(1));
}

void VGGImpl::load_weights(const std::filesystem::path& path) { load_state_dict(*this, read_state_dict(path), true); }

}  // namespace tlkit::model
