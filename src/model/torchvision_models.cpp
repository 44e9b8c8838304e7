// VGG and ResNet as torchvision 0.14 defines them (torchvision/models/vgg.py, resnet.py), and the
// dispatch over every supported architecture.

#include "torchvision_models.h"

#include <map>

#include <spdlog/fmt/fmt.h>

#include <tlkit/core/error.h>

#include "script_builder.h"

namespace tlkit::model::detail {
namespace {

using torch::jit::Module;

// VGG configurations "A", "B", "D", "E": output channels per 3x3 conv, 0 for a 2x2 max pool.
const std::map<std::string, std::vector<int>>& vgg_configs() {
  static const std::map<std::string, std::vector<int>> configs{
      {"vgg11", {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}},
      {"vgg13", {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}},
      {"vgg16", {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}},
      {"vgg19",
       {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512,
        0}}};
  return configs;
}

Module vgg(ScriptBuilder& b, const std::vector<int>& config, bool batch_norm,
           std::int64_t num_classes) {
  std::vector<Module> features;
  std::int64_t in = 3;
  for (const int v : config) {
    if (v == 0) {
      features.push_back(b.max_pool(2, 2, 0));
      continue;
    }
    features.push_back(b.conv({in, v, 3, 1, 1, 1, true}));
    if (batch_norm) features.push_back(b.batch_norm(v));
    features.push_back(b.activation(Activation::ReLU));
    in = v;
  }
  auto m = b.make("torchvision.models.vgg.VGG");
  m.register_module("features", b.sequential(features));
  m.register_module("avgpool", b.adaptive_avg_pool(7));
  m.register_module("classifier",
                    b.sequential({b.linear(512 * 7 * 7, 4096), b.activation(Activation::ReLU),
                                  b.dropout(0.5), b.linear(4096, 4096),
                                  b.activation(Activation::ReLU), b.dropout(0.5),
                                  b.linear(4096, num_classes)}));
  m.define(chain_forward({"features", "avgpool", "flatten", "classifier"}));
  return m;
}

// BasicBlock (two 3x3 convs) or Bottleneck (1x1, 3x3 with the stride, 1x1 to 4x planes), each
// with the shortcut through `downsample` when the shape changes.
Module resnet_block(ScriptBuilder& b, bool bottleneck, std::int64_t in, std::int64_t planes,
                    std::int64_t stride) {
  const std::int64_t out = bottleneck ? planes * 4 : planes;
  auto m = b.make(bottleneck ? "torchvision.models.resnet.Bottleneck"
                             : "torchvision.models.resnet.BasicBlock");
  std::string body = "def forward(self, x: Tensor) -> Tensor:\n";
  if (bottleneck) {
    m.register_module("conv1", b.conv({in, planes, 1, 1, 0, 1, false}));
    m.register_module("bn1", b.batch_norm(planes));
    m.register_module("conv2", b.conv({planes, planes, 3, stride, 1, 1, false}));
    m.register_module("bn2", b.batch_norm(planes));
    m.register_module("conv3", b.conv({planes, out, 1, 1, 0, 1, false}));
    m.register_module("bn3", b.batch_norm(out));
    m.register_module("relu", b.activation(Activation::ReLU));
    body +=
        "    out = self.relu.forward(self.bn1.forward(self.conv1.forward(x)))\n"
        "    out = self.relu.forward(self.bn2.forward(self.conv2.forward(out)))\n"
        "    out = self.bn3.forward(self.conv3.forward(out))\n";
  } else {
    m.register_module("conv1", b.conv({in, planes, 3, stride, 1, 1, false}));
    m.register_module("bn1", b.batch_norm(planes));
    m.register_module("relu", b.activation(Activation::ReLU));
    m.register_module("conv2", b.conv({planes, planes, 3, 1, 1, 1, false}));
    m.register_module("bn2", b.batch_norm(planes));
    body +=
        "    out = self.relu.forward(self.bn1.forward(self.conv1.forward(x)))\n"
        "    out = self.bn2.forward(self.conv2.forward(out))\n";
  }
  if (stride != 1 || in != out) {
    m.register_module("downsample", b.sequential({b.conv({in, out, 1, stride, 0, 1, false}),
                                                  b.batch_norm(out)}));
    body += "    out = out + self.downsample.forward(x)\n";
  } else {
    body += "    out = out + x\n";
  }
  m.define(body + "    return self.relu.forward(out)\n");
  return m;
}

Module resnet(ScriptBuilder& b, const std::vector<int>& blocks, bool bottleneck,
              std::int64_t num_classes) {
  auto m = b.make("torchvision.models.resnet.ResNet");
  m.register_module("conv1", b.conv({3, 64, 7, 2, 3, 1, false}));
  m.register_module("bn1", b.batch_norm(64));
  m.register_module("relu", b.activation(Activation::ReLU));
  m.register_module("maxpool", b.max_pool(3, 2, 1));
  std::int64_t in = 64;
  for (size_t stage = 0; stage < blocks.size(); ++stage) {
    const std::int64_t planes = std::int64_t{64} << stage;
    std::vector<Module> layer;
    for (int i = 0; i < blocks[stage]; ++i) {
      layer.push_back(resnet_block(b, bottleneck, in, planes, i == 0 && stage > 0 ? 2 : 1));
      in = bottleneck ? planes * 4 : planes;
    }
    m.register_module(fmt::format("layer{}", stage + 1), b.sequential(layer));
  }
  m.register_module("avgpool", b.adaptive_avg_pool(1));
  m.register_module("fc", b.linear(in, num_classes));
  m.define(chain_forward({"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                          "layer4", "avgpool", "flatten", "fc"}));
  return m;
}

}  // namespace

const std::vector<std::string>& torchvision_architectures() {
  static const std::vector<std::string> names{
      "vgg11",    "vgg11_bn", "vgg13",    "vgg13_bn",           "vgg16",
      "vgg16_bn", "vgg19",    "vgg19_bn", "resnet18",           "resnet34",
      "resnet50", "mobilenet_v3_small",   "mobilenet_v3_large", "efficientnet_b0"};
  return names;
}

std::string chain_forward(const std::vector<std::string>& steps) {
  std::string body = "def forward(self, x: Tensor) -> Tensor:\n";
  for (const auto& step : steps) {
    body += step == "flatten" ? "    x = torch.flatten(x, 1)\n"
                              : fmt::format("    x = self.{}.forward(x)\n", step);
  }
  return body + "    return x\n";
}

bool build_vgg_or_resnet(ScriptBuilder& b, const std::string& arch, std::int64_t num_classes,
                         Module& out) {
  const bool bn = arch.size() > 3 && arch.compare(arch.size() - 3, 3, "_bn") == 0;
  const auto config = vgg_configs().find(bn ? arch.substr(0, arch.size() - 3) : arch);
  if (config != vgg_configs().end()) {
    out = vgg(b, config->second, bn, num_classes);
    return true;
  }
  if (arch == "resnet18") out = resnet(b, {2, 2, 2, 2}, false, num_classes);
  if (arch == "resnet34") out = resnet(b, {3, 4, 6, 3}, false, num_classes);
  if (arch == "resnet50") out = resnet(b, {3, 4, 6, 3}, true, num_classes);
  return arch.rfind("resnet", 0) == 0 && out.hasattr("fc");
}

Module build_torchvision(const std::string& arch, std::int64_t num_classes) {
  TLKIT_CHECK(num_classes >= 1, "the number of classes must be at least 1, got ", num_classes);
  ScriptBuilder builder;
  Module out = builder.make("tlkit.Placeholder");
  if (build_vgg_or_resnet(builder, arch, num_classes, out) ||
      build_mobile(builder, arch, num_classes, out))
    return out;
  std::string names;
  for (const auto& name : torchvision_architectures()) names += (names.empty() ? "" : " ") + name;
  fail("unknown architecture '", arch, "'; tlkit imports: ", names);
}

}  // namespace tlkit::model::detail
