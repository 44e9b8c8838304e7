#pragma once
// torchvision's classifiers rebuilt as TorchScript modules in C++ (see script_builder.h), with
// torchvision's module names, so that their state_dict names and shapes are torchvision's
// (features.0.weight, layer1.0.conv1.weight, classifier.3.weight, ...) and their forward() is
// torchvision's forward in eval and in training mode (torchvision 0.14 definitions).

#include <cstdint>
#include <string>
#include <vector>

#include <torch/script.h>

namespace tlkit::model::detail {

class ScriptBuilder;

// vgg11 vgg13 vgg16 vgg19 (and _bn), resnet18/34/50, mobilenet_v3_small/large, efficientnet_b0.
const std::vector<std::string>& torchvision_architectures();

// The network `arch` with `num_classes` outputs and zero weights; throws for an unknown name.
torch::jit::Module build_torchvision(const std::string& arch, std::int64_t num_classes);

// One family each (torchvision_models.cpp, torchvision_mobile.cpp); false when `arch` is not theirs.
bool build_vgg_or_resnet(ScriptBuilder& b, const std::string& arch, std::int64_t num_classes,
                         torch::jit::Module& out);
bool build_mobile(ScriptBuilder& b, const std::string& arch, std::int64_t num_classes,
                  torch::jit::Module& out);

// The classifier's forward: `steps` run in order on x ("features", "avgpool", "flatten", ...).
std::string chain_forward(const std::vector<std::string>& steps);

}  // namespace tlkit::model::detail
