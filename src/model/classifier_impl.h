#pragma once
// Private state of tlkit::model::Classifier, shared by classifier.cpp and layers.cpp.

#include <torch/script.h>

#include <tlkit/model/classifier.h>

namespace tlkit::model {

struct LayerEntry {
  Layer info;                 // trainable counts are refreshed on demand
  torch::jit::Module module;  // shares the parameters with the whole model
  bool flatten_before = false;
};

struct Classifier::Impl {
  torch::jit::Module module;
  ModelMetadata metadata;
  std::filesystem::path path;
  std::int64_t input_size = 224;
  std::int64_t input_channels = 3;
  std::int64_t num_classes = 0;
  std::string head_override;
  std::vector<LayerEntry> layers;
  bool walk_ok = false;
};

namespace detail {
// The class name of a scripted module ("Conv2d" for __torch__.torch.nn.modules.conv.Conv2d).
std::string type_name(const torch::jit::Module& module);
bool has_matrix_weight(const torch::jit::Module& module);
// Every layer of `module` in forward order (see the comment on Classifier).
std::vector<LayerEntry> list_layers(const torch::jit::Module& module);
}  // namespace detail

}  // namespace tlkit::model
