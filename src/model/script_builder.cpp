#include "script_builder.h"

#include <spdlog/fmt/fmt.h>

#include <tlkit/core/error.h>

namespace tlkit::model::detail {
namespace {

const char* const kHeader = "def forward(self, x: Tensor) -> Tensor:\n";

at::Tensor zeros(at::IntArrayRef shape) { return at::zeros(shape); }

}  // namespace

std::string script_float(double value) {
  auto text = fmt::format("{}", value);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

ScriptBuilder::ScriptBuilder() : unit_(std::make_shared<torch::jit::CompilationUnit>()) {}

torch::jit::Module ScriptBuilder::make(const std::string& cls) {
  torch::jit::Module module(c10::QualifiedName("__torch__." + cls), unit_, /*shouldMangle=*/true);
  module.register_attribute("training", c10::BoolType::get(), false);
  return module;
}

torch::jit::Module ScriptBuilder::conv(const ConvSpec& s) {
  TLKIT_CHECK(s.in % s.groups == 0, "conv: ", s.in, " channels in ", s.groups, " groups");
  auto m = make("torch.nn.modules.conv.Conv2d");
  m.register_parameter("weight", zeros({s.out, s.in / s.groups, s.kernel, s.kernel}), false);
  if (s.bias) m.register_parameter("bias", zeros({s.out}), false);
  m.define(kHeader + fmt::format("    return torch.conv2d(x, self.weight, {}, [{}, {}], [{}, {}], "
                                 "[1, 1], {})\n",
                                 s.bias ? "self.bias" : "None", s.stride, s.stride, s.padding,
                                 s.padding, s.groups));
  return m;
}

// torch.nn.BatchNorm2d: batch statistics in training (the running ones updated with `momentum`
// and num_batches_tracked counted), the running statistics in eval.
torch::jit::Module ScriptBuilder::batch_norm(std::int64_t channels, double eps, double momentum) {
  auto m = make("torch.nn.modules.batchnorm.BatchNorm2d");
  m.register_parameter("weight", at::ones({channels}), false);
  m.register_parameter("bias", zeros({channels}), false);
  m.register_buffer("running_mean", zeros({channels}));
  m.register_buffer("running_var", at::ones({channels}));
  m.register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
  m.define(kHeader + fmt::format(
                         "    if self.training:\n"
                         "        self.num_batches_tracked.add_(1)\n"
                         "    return torch.batch_norm(x, self.weight, self.bias, "
                         "self.running_mean, self.running_var, self.training, {}, {}, True)\n",
                         script_float(momentum), script_float(eps)));
  return m;
}

torch::jit::Module ScriptBuilder::linear(std::int64_t in, std::int64_t out) {
  auto m = make("torch.nn.modules.linear.Linear");
  m.register_parameter("weight", zeros({out, in}), false);
  m.register_parameter("bias", zeros({out}), false);
  m.define(std::string(kHeader) + "    return torch.linear(x, self.weight, self.bias)\n");
  return m;
}

torch::jit::Module ScriptBuilder::activation(Activation kind) {
  const char* cls = "torch.nn.modules.activation.ReLU";
  const char* op = "torch.relu";
  switch (kind) {
    case Activation::ReLU: break;
    case Activation::Hardswish: cls = "torch.nn.modules.activation.Hardswish"; op = "torch.hardswish"; break;
    case Activation::Hardsigmoid: cls = "torch.nn.modules.activation.Hardsigmoid"; op = "torch.hardsigmoid"; break;
    case Activation::SiLU: cls = "torch.nn.modules.activation.SiLU"; op = "torch.silu"; break;
    case Activation::Sigmoid: cls = "torch.nn.modules.activation.Sigmoid"; op = "torch.sigmoid"; break;
    case Activation::None: fail("activation: none requested");
  }
  auto m = make(cls);
  m.define(kHeader + fmt::format("    return {}(x)\n", op));
  return m;
}

torch::jit::Module ScriptBuilder::max_pool(std::int64_t kernel, std::int64_t stride,
                                           std::int64_t padding) {
  auto m = make("torch.nn.modules.pooling.MaxPool2d");
  m.define(kHeader + fmt::format("    return torch.max_pool2d(x, [{0}, {0}], [{1}, {1}], "
                                 "[{2}, {2}], [1, 1], False)\n",
                                 kernel, stride, padding));
  return m;
}

torch::jit::Module ScriptBuilder::adaptive_avg_pool(std::int64_t size) {
  auto m = make("torch.nn.modules.pooling.AdaptiveAvgPool2d");
  m.define(kHeader + fmt::format("    return torch.adaptive_avg_pool2d(x, [{0}, {0}])\n", size));
  return m;
}

torch::jit::Module ScriptBuilder::dropout(double p) {
  auto m = make("torch.nn.modules.dropout.Dropout");
  m.define(kHeader +
           fmt::format("    return torch.dropout(x, {}, self.training)\n", script_float(p)));
  return m;
}

torch::jit::Module ScriptBuilder::sequential(const std::vector<torch::jit::Module>& children,
                                             const std::string& cls) {
  auto m = make(cls);
  std::string body = kHeader;
  for (size_t i = 0; i < children.size(); ++i) {
    m.register_module(std::to_string(i), children[i]);
    body += fmt::format("    x = getattr(self, \"{}\").forward(x)\n", i);
  }
  m.define(body + "    return x\n");
  return m;
}

torch::jit::Module ScriptBuilder::conv_norm_act(const ConvSpec& spec, Activation act, double eps,
                                                double momentum) {
  std::vector<torch::jit::Module> parts{conv(spec), batch_norm(spec.out, eps, momentum)};
  if (act != Activation::None) parts.push_back(activation(act));
  return sequential(parts, "torchvision.ops.misc.Conv2dNormActivation");
}

}  // namespace tlkit::model::detail
