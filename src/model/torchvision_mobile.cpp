// MobileNetV3 and EfficientNet-B0 as torchvision 0.14 defines them
// (torchvision/models/mobilenetv3.py, efficientnet.py, ops/misc.py, ops/stochastic_depth.py).

#include <cmath>

#include <spdlog/fmt/fmt.h>

#include "script_builder.h"
#include "torchvision_models.h"

namespace tlkit::model::detail {
namespace {

using torch::jit::Module;

// torchvision's _make_divisible(v, 8): the nearest multiple of 8, never 10% below v.
std::int64_t make_divisible(double v, std::int64_t divisor = 8) {
  std::int64_t rounded = std::max<std::int64_t>(
      divisor, static_cast<std::int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

// torchvision.ops.SqueezeExcitation: x * scale_activation(fc2(activation(fc1(avgpool(x))))).
Module squeeze_excitation(ScriptBuilder& b, std::int64_t channels, std::int64_t squeeze,
                          Activation act, Activation scale) {
  auto m = b.make("torchvision.ops.misc.SqueezeExcitation");
  m.register_module("avgpool", b.adaptive_avg_pool(1));
  m.register_module("fc1", b.conv({channels, squeeze, 1, 1, 0, 1, true}));
  m.register_module("fc2", b.conv({squeeze, channels, 1, 1, 0, 1, true}));
  m.register_module("activation", b.activation(act));
  m.register_module("scale_activation", b.activation(scale));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    scale = self.avgpool.forward(x)\n"
      "    scale = self.activation.forward(self.fc1.forward(scale))\n"
      "    scale = self.scale_activation.forward(self.fc2.forward(scale))\n"
      "    return scale * x\n");
  return m;
}

// One row of torchvision's bneck_conf (MobileNetV3) or MBConvConfig (EfficientNet).
struct BlockSpec {
  std::int64_t in, kernel, expanded, out;
  bool se;
  Activation act;
  std::int64_t stride;
};

ConvSpec depthwise(std::int64_t channels, std::int64_t kernel, std::int64_t stride) {
  return {channels, channels, kernel, stride, (kernel - 1) / 2, channels, false};
}

ConvSpec pointwise(std::int64_t in, std::int64_t out) { return {in, out, 1, 1, 0, 1, false}; }

// MobileNetV3's InvertedResidual: expand (when wider), depthwise, squeeze-excite, project; the
// input added back when the shape is kept. Batch norm with eps 0.001, momentum 0.01.
Module inverted_residual(ScriptBuilder& b, const BlockSpec& s) {
  const double eps = 0.001, momentum = 0.01;
  std::vector<Module> layers;
  if (s.expanded != s.in)
    layers.push_back(b.conv_norm_act(pointwise(s.in, s.expanded), s.act, eps, momentum));
  layers.push_back(
      b.conv_norm_act(depthwise(s.expanded, s.kernel, s.stride), s.act, eps, momentum));
  if (s.se) {
    layers.push_back(squeeze_excitation(b, s.expanded, make_divisible(s.expanded / 4),
                                        Activation::ReLU, Activation::Hardsigmoid));
  }
  layers.push_back(
      b.conv_norm_act(pointwise(s.expanded, s.out), Activation::None, eps, momentum));
  auto m = b.make("torchvision.models.mobilenetv3.InvertedResidual");
  m.register_module("block", b.sequential(layers));
  const bool residual = s.stride == 1 && s.in == s.out;
  m.define(std::string("def forward(self, x: Tensor) -> Tensor:\n") +
           (residual ? "    return self.block.forward(x) + x\n"
                     : "    return self.block.forward(x)\n"));
  return m;
}

Module mobilenet_v3(ScriptBuilder& b, bool large, std::int64_t num_classes) {
  const auto RE = Activation::ReLU, HS = Activation::Hardswish;
  const std::vector<BlockSpec> large_specs{
      {16, 3, 16, 16, false, RE, 1},   {16, 3, 64, 24, false, RE, 2},
      {24, 3, 72, 24, false, RE, 1},   {24, 5, 72, 40, true, RE, 2},
      {40, 5, 120, 40, true, RE, 1},   {40, 5, 120, 40, true, RE, 1},
      {40, 3, 240, 80, false, HS, 2},  {80, 3, 200, 80, false, HS, 1},
      {80, 3, 184, 80, false, HS, 1},  {80, 3, 184, 80, false, HS, 1},
      {80, 3, 480, 112, true, HS, 1},  {112, 3, 672, 112, true, HS, 1},
      {112, 5, 672, 160, true, HS, 2}, {160, 5, 960, 160, true, HS, 1},
      {160, 5, 960, 160, true, HS, 1}};
  const std::vector<BlockSpec> small_specs{
      {16, 3, 16, 16, true, RE, 2},  {16, 3, 72, 24, false, RE, 2}, {24, 3, 88, 24, false, RE, 1},
      {24, 5, 96, 40, true, HS, 2},  {40, 5, 240, 40, true, HS, 1}, {40, 5, 240, 40, true, HS, 1},
      {40, 5, 120, 48, true, HS, 1}, {48, 5, 144, 48, true, HS, 1}, {48, 5, 288, 96, true, HS, 2},
      {96, 5, 576, 96, true, HS, 1}, {96, 5, 576, 96, true, HS, 1}};
  const auto& specs = large ? large_specs : small_specs;
  const std::int64_t last_channel = large ? 1280 : 1024;
  std::vector<Module> features{
      b.conv_norm_act({3, 16, 3, 2, 1, 1, false}, HS, 0.001, 0.01)};
  for (const auto& spec : specs) features.push_back(inverted_residual(b, spec));
  const std::int64_t last_in = specs.back().out, last_out = 6 * last_in;
  features.push_back(b.conv_norm_act(pointwise(last_in, last_out), HS, 0.001, 0.01));
  auto m = b.make("torchvision.models.mobilenetv3.MobileNetV3");
  m.register_module("features", b.sequential(features));
  m.register_module("avgpool", b.adaptive_avg_pool(1));
  m.register_module("classifier",
                    b.sequential({b.linear(last_out, last_channel), b.activation(HS),
                                  b.dropout(0.2), b.linear(last_channel, num_classes)}));
  m.define(chain_forward({"features", "avgpool", "flatten", "classifier"}));
  return m;
}

// torchvision.ops.StochasticDepth(p, "row"): in training, each image's residual branch is dropped
// with probability p and the kept ones scaled by 1 / (1 - p); the identity in eval.
Module stochastic_depth(ScriptBuilder& b, double p) {
  auto m = b.make("torchvision.ops.stochastic_depth.StochasticDepth");
  std::string body = "def forward(self, x: Tensor) -> Tensor:\n";
  if (p > 0) {
    body += fmt::format(
        "    if not self.training:\n"
        "        return x\n"
        "    noise = torch.empty([x.size(0), 1, 1, 1], dtype=x.dtype, device=x.device)\n"
        "    noise = noise.bernoulli_({0}).div_({0})\n"
        "    return x * noise\n",
        script_float(1.0 - p));
  } else {
    body += "    return x\n";
  }
  m.define(body);
  return m;
}

// EfficientNet's MBConv: expand x6 (SiLU), depthwise, squeeze-excite (SiLU, sigmoid) to
// in / 4, project; stochastic depth on the residual branch.
Module mb_conv(ScriptBuilder& b, const BlockSpec& s, double drop) {
  std::vector<Module> layers;
  const auto silu = Activation::SiLU;
  if (s.expanded != s.in) layers.push_back(b.conv_norm_act(pointwise(s.in, s.expanded), silu));
  layers.push_back(b.conv_norm_act(depthwise(s.expanded, s.kernel, s.stride), silu));
  layers.push_back(squeeze_excitation(b, s.expanded, std::max<std::int64_t>(1, s.in / 4), silu,
                                      Activation::Sigmoid));
  layers.push_back(b.conv_norm_act(pointwise(s.expanded, s.out), Activation::None));
  auto m = b.make("torchvision.models.efficientnet.MBConv");
  m.register_module("block", b.sequential(layers));
  m.register_module("stochastic_depth", stochastic_depth(b, drop));
  const bool residual = s.stride == 1 && s.in == s.out;
  m.define(std::string("def forward(self, x: Tensor) -> Tensor:\n") +
           (residual ? "    return self.stochastic_depth.forward(self.block.forward(x)) + x\n"
                     : "    return self.block.forward(x)\n"));
  return m;
}

Module efficientnet_b0(ScriptBuilder& b, std::int64_t num_classes) {
  struct Stage {
    std::int64_t expand, kernel, stride, in, out, layers;
  };
  const std::vector<Stage> stages{{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},
                                  {6, 5, 2, 24, 40, 2},  {6, 3, 2, 40, 80, 3},
                                  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
                                  {6, 3, 1, 192, 320, 1}};
  std::int64_t total = 0, block_id = 0;
  for (const auto& stage : stages) total += stage.layers;
  std::vector<Module> features{b.conv_norm_act({3, 32, 3, 2, 1, 1, false}, Activation::SiLU)};
  for (const auto& stage : stages) {
    std::vector<Module> blocks;
    for (std::int64_t i = 0; i < stage.layers; ++i, ++block_id) {
      const std::int64_t in = i == 0 ? stage.in : stage.out;
      const BlockSpec spec{in,        stage.kernel, make_divisible(in * stage.expand),
                           stage.out, true,         Activation::SiLU,
                           i == 0 ? stage.stride : 1};
      blocks.push_back(mb_conv(b, spec, 0.2 * static_cast<double>(block_id) / total));
    }
    features.push_back(b.sequential(blocks));
  }
  features.push_back(b.conv_norm_act(pointwise(320, 1280), Activation::SiLU));
  auto m = b.make("torchvision.models.efficientnet.EfficientNet");
  m.register_module("features", b.sequential(features));
  m.register_module("avgpool", b.adaptive_avg_pool(1));
  m.register_module("classifier", b.sequential({b.dropout(0.2), b.linear(1280, num_classes)}));
  m.define(chain_forward({"features", "avgpool", "flatten", "classifier"}));
  return m;
}

}  // namespace

bool build_mobile(ScriptBuilder& b, const std::string& arch, std::int64_t num_classes,
                  Module& out) {
  if (arch == "mobilenet_v3_small" || arch == "mobilenet_v3_large") {
    out = mobilenet_v3(b, arch == "mobilenet_v3_large", num_classes);
    return true;
  }
  if (arch == "efficientnet_b0") {
    out = efficientnet_b0(b, num_classes);
    return true;
  }
  return false;
}

}  // namespace tlkit::model::detail
