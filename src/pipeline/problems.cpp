// The built-in test problems of `tlkit bench` (see problems.h for the architectures).
#include <tlkit/pipeline/problems.h>

#include <cmath>

#include <torch/nn/functional/padding.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>

namespace tlkit::pipeline {
namespace {

namespace nn = torch::nn;

}  // namespace

at::Tensor same_max_pool2d(const at::Tensor& x, std::int64_t kernel, std::int64_t stride) {
  auto pad = [&](std::int64_t n) {
    const auto out = (n + stride - 1) / stride;
    const auto total = std::max<std::int64_t>((out - 1) * stride + kernel - n, 0);
    return std::pair<std::int64_t, std::int64_t>{total / 2, total - total / 2};
  };
  const auto [top, bottom] = pad(x.size(2));
  const auto [left, right] = pad(x.size(3));
  auto padded = at::constant_pad_nd(x, {left, right, top, bottom}, -INFINITY);
  return at::max_pool2d(padded, {kernel, kernel}, {stride, stride});
}

namespace {

nn::Functional same_pool(std::int64_t kernel, std::int64_t stride) {
  return nn::Functional(
      [kernel, stride](const at::Tensor& x) { return same_max_pool2d(x, kernel, stride); });
}

nn::Functional relu() {
  return nn::Functional([](const at::Tensor& x) { return at::relu(x); });
}

nn::Functional flatten() {
  return nn::Functional([](const at::Tensor& x) { return x.flatten(1); });
}

// TensorFlow's truncated normal: values beyond two standard deviations are drawn again.
void truncated_normal_(at::Tensor& weight, double stddev) {
  torch::NoGradGuard no_grad;
  weight.normal_(0, stddev);
  for (int round = 0; round < 100; ++round) {
    const auto outside = weight.abs() > 2 * stddev;
    if (!outside.any().item<bool>()) return;
    weight.masked_scatter_(outside,
                           at::empty_like(weight).normal_(0, stddev).masked_select(outside));
  }
}

nn::Sequential fmnist_2c2d(std::int64_t classes) {
  nn::Sequential net;
  net->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(1, 32, 5).padding(2)));
  net->push_back("relu1", relu());
  net->push_back("pool1", same_pool(2, 2));
  net->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)));
  net->push_back("relu2", relu());
  net->push_back("pool2", same_pool(2, 2));
  net->push_back("flatten", flatten());
  net->push_back("dense1", nn::Linear(7 * 7 * 64, 1024));
  net->push_back("relu3", relu());
  net->push_back("dense2", nn::Linear(1024, classes));
  torch::NoGradGuard no_grad;
  for (auto& p : net->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      p.value().fill_(0.05);
    } else {
      truncated_normal_(p.value(), 0.05);
    }
  }
  return net;
}

nn::Sequential cifar10_3c3d(std::int64_t classes) {
  nn::Sequential net;
  net->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 5)));
  net->push_back("relu1", relu());
  net->push_back("pool1", same_pool(3, 2));
  net->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(64, 96, 3)));
  net->push_back("relu2", relu());
  net->push_back("pool2", same_pool(3, 2));
  net->push_back("conv3", nn::Conv2d(nn::Conv2dOptions(96, 128, 3).padding(1)));
  net->push_back("relu3", relu());
  net->push_back("pool3", same_pool(3, 2));
  net->push_back("flatten", flatten());
  net->push_back("dense1", nn::Linear(3 * 3 * 128, 512));
  net->push_back("relu4", relu());
  net->push_back("dense2", nn::Linear(512, 256));
  net->push_back("relu5", relu());
  net->push_back("dense3", nn::Linear(256, classes));
  torch::NoGradGuard no_grad;
  for (auto& p : net->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      p.value().zero_();
    } else if (p.key().rfind("conv", 0) == 0) {
      nn::init::xavier_normal_(p.value());
    } else {
      nn::init::xavier_uniform_(p.value());
    }
  }
  return net;
}

nn::Sequential vgg_cifar(std::int64_t classes) {
  nn::Sequential net;
  std::int64_t channels = 3, index = 0;
  auto name = [&](const char* kind) { return std::string(kind) + std::to_string(index++); };
  for (const std::int64_t width : {32, 64, 128}) {
    for (int k = 0; k < 2; ++k) {
      nn::Conv2d conv(nn::Conv2dOptions(channels, width, 3).padding(1));
      nn::init::kaiming_normal_(conv->weight, 0, torch::kFanOut, torch::kReLU);
      nn::init::zeros_(conv->bias);
      net->push_back(name("conv"), conv);
      net->push_back(name("bn"), nn::BatchNorm2d(width));
      net->push_back(name("relu"), relu());
      channels = width;
    }
    net->push_back(name("pool"), nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
  }
  net->push_back("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({2, 2})));
  net->push_back("flatten", flatten());
  auto linear = [](std::int64_t in, std::int64_t out) {
    nn::Linear layer(in, out);
    nn::init::normal_(layer->weight, 0, 0.01);
    nn::init::zeros_(layer->bias);
    return layer;
  };
  net->push_back("fc1", linear(channels * 4, 256));
  net->push_back("relu_fc1", relu());
  net->push_back("drop1", nn::Dropout(0.5));
  net->push_back("fc2", linear(256, 256));
  net->push_back("relu_fc2", relu());
  net->push_back("drop2", nn::Dropout(0.5));
  net->push_back("fc3", linear(256, classes));
  return net;
}

constexpr std::array<double, 3> kZero{0, 0, 0}, kOne{1, 1, 1};
constexpr std::array<double, 3> kCifarMean{0.49139968, 0.48215841, 0.44653091};
constexpr std::array<double, 3> kCifarStd{0.24703223, 0.24348513, 0.26158784};
constexpr std::array<double, 3> kImagenetMean{0.485, 0.456, 0.406};
constexpr std::array<double, 3> kImagenetStd{0.229, 0.224, 0.225};

const std::vector<TestProblem>& problems() {
  static const std::vector<TestProblem> all = {
      {"fmnist_2c2d", "DeepOBS 2c2d (2 conv + 2 dense, 3.3M parameters) on Fashion-MNIST",
       "fashion-mnist:/usr/share/datasets/fashion-mnist", 1, 28, kZero, kOne, 128, 0.0, 100, 0.9,
       "none", false},
      {"cifar10_3c3d", "DeepOBS 3c3d (3 conv + 3 dense, 0.9M parameters, L2 0.002) on CIFAR-10", "",
       3, 32, kCifarMean, kCifarStd, 128, 0.002, 100, 0.8, "cifar", true},
      {"vgg_cifar", "the export script's small VGG (6 conv + BN, 0.5M parameters) on 32x32 RGB", "",
       3, 32, kImagenetMean, kImagenetStd, 128, 0.0, 30, 0.8, "cifar", false},
  };
  return all;
}

}  // namespace

std::shared_ptr<train::ModuleNetwork> TestProblem::make_network(std::int64_t num_classes) const {
  TLKIT_CHECK(num_classes >= 2, "problem ", name, " needs at least 2 classes, got ", num_classes);
  nn::Sequential net = name == "fmnist_2c2d"    ? fmnist_2c2d(num_classes)
                       : name == "cifar10_3c3d" ? cifar10_3c3d(num_classes)
                                                : vgg_cifar(num_classes);
  return train::ModuleNetwork::from(net);
}

const TestProblem& test_problem(const std::string& name) {
  for (const auto& problem : problems()) {
    if (problem.name == name) return problem;
  }
  fail("unknown test problem '", name, "'; use one of ", join(test_problem_names(), ", "));
}

std::vector<std::string> test_problem_names() {
  std::vector<std::string> names;
  for (const auto& problem : problems()) names.push_back(problem.name);
  return names;
}

bool is_regularized_weight(const std::string& parameter_name, const at::Tensor& parameter) {
  const auto dot = parameter_name.rfind('.');
  const auto leaf = dot == std::string::npos ? parameter_name : parameter_name.substr(dot + 1);
  return leaf == "weight" && parameter.dim() >= 2;
}

}  // namespace tlkit::pipeline
