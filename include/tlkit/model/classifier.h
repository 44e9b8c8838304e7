#pragma once
// tlkit::model::Classifier — a TorchScript image classifier (VGG16 by default) prepared for
// transfer learning: its layers in order, its head, freezing, and the metadata stored in the file
// by scripts/export_vgg16.py (architecture, input size, preprocessing, weights source, class
// names).
//
// Layers. The layer list comes from a dry run on a 1×C×S×S input (S = the declared input size):
// the top-level children are visited in registration order; a Sequential is entered and its
// children visited in turn (recursively); any other module is one layer and runs its own forward().
// Before a module whose weight is 2-D (Linear), a >2-D input is flattened from dim 1 — this is how
// VGG (features → avgpool → flatten → classifier) and ResNet-style models (… → avgpool → fc) are
// walked. The walk is checked against the model's real forward(); when a model's forward does
// something else (non-Sequential control flow, unused children, several inputs), shapes are shown
// as unknown and cutting at a layer (forward_until) is refused with an explanation.
//
// Head replacement (transfer to new classes): the head's `weight` and `bias` are re-registered
// with the new shapes (register_parameter) and initialised like torch.nn.Linear (uniform in
// ±1/sqrt(fan_in), which is kaiming_uniform_(a=√5)); the TorchScript constant `out_features` keeps
// its old value (cosmetic — forward does not read it).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace torch::jit {
struct Module;
}

namespace tlkit::model {

// What scripts/export_vgg16.py stores in the module as tlkit_* attributes (defaults otherwise).
struct ModelMetadata {
  bool present = false;  // false: a TorchScript file without tlkit metadata (defaults below used)
  std::string architecture = "unknown";
  std::int64_t input_size = 224;
  std::int64_t resize = 256;  // preprocessing: shorter side resized to this...
  std::int64_t crop = 224;    // ...then centre-cropped to this
  std::vector<double> mean{0.485, 0.456, 0.406};
  std::vector<double> std{0.229, 0.224, 0.225};
  std::string weights = "unknown";
  std::vector<std::string> class_names;
  std::string head;  // the head's module name when the file names it

  bool random_init() const { return weights.rfind("random-init", 0) == 0; }
};

// One row of the layer table.
struct Layer {
  size_t index = 0;
  std::string name;                        // qualified module name, e.g. "features.0"
  std::string type;                        // class name, e.g. "Conv2d"
  std::vector<std::int64_t> output_shape;  // for a batch of 1; empty when unknown
  std::int64_t params = 0;
  std::int64_t trainable_params = 0;  // parameters with requires_grad
  bool has_params() const { return params > 0; }
  bool trainable() const { return params > 0 && trainable_params == params; }
};

struct LoadOptions {
  c10::Device device = c10::kCPU;
  std::int64_t input_size = 0;  // 0: the size in the file's metadata (224 when there is none)
};

class Classifier {
 public:
  // Loads a TorchScript file; throws tlkit::Error when it is missing, not TorchScript, has no
  // parameters, or does not map a 1×C×S×S batch to [1, classes].
  static Classifier load(const std::filesystem::path& path, const LoadOptions& options = {});
  // Wraps a module already in memory (same checks as load).
  explicit Classifier(torch::jit::Module module, const LoadOptions& options = {});

  torch::jit::Module& module();
  const torch::jit::Module& module() const;
  const ModelMetadata& metadata() const;
  const std::filesystem::path& path() const;  // empty when not loaded from a file
  std::int64_t num_classes() const;
  std::int64_t input_channels() const;
  const std::vector<std::string>& class_names() const { return metadata().class_names; }

  at::Tensor forward(const at::Tensor& images);
  void train(bool on = true);
  bool is_training() const;
  void to(c10::Device device);
  c10::Device device() const;
  // A deep copy (parameters copied, metadata kept).
  Classifier clone() const;

  // Layers in forward order with live trainable counts.
  std::vector<Layer> layers() const;
  size_t layer_index(const std::string& name) const;  // a layer or a parent module ("classifier")
  bool walk_matches_forward() const;
  // The output of layer `name` (flattened to [N, D] when flatten is true), running only the layers
  // up to it; the model's current train/eval mode applies.
  at::Tensor forward_until(const at::Tensor& images, const std::string& name, bool flatten = true);
  // The outputs of several layers (in the order of `names`) from one pass: the layers run once,
  // up to the deepest of them.
  std::vector<at::Tensor> forward_until(const at::Tensor& images,
                                        const std::vector<std::string>& names, bool flatten = true);
  // The layer whose output feeds the head, skipping Dropout (identity in eval), e.g.
  // "classifier.4".
  std::string penultimate_layer() const;
  // The layer whose output feeds layer `name`, skipping Dropout: where features are cut when the
  // layers from `name` on are trained as a head (penultimate_layer() is feature_layer_for(head)).
  std::string feature_layer_for(const std::string& name) const;
  // Runs the layers from `name` (inclusive) to the output on `input`, the output of the layers
  // before it. A flattened [N, D] input is reshaped to the layer's input shape (e.g. [N, 64, 8, 8]
  // for a convolution), so cached feature rows can be fed back. Inverse of forward_until.
  at::Tensor forward_from(const at::Tensor& input, const std::string& name);
  // The shape layer `name` receives for a batch of 1 (the output of the layer before it).
  std::vector<std::int64_t> input_shape(const std::string& name) const;
  // The modules of the layers from `name` on, with their qualified names (they share the model's
  // parameters), e.g. to train them as a head.
  std::vector<std::pair<std::string, torch::jit::Module>> layers_from(
      const std::string& name) const;
  // Fresh random weights for the layers from `name` on (every layer when `name` is empty): weights
  // of Linear / Conv as torch initialises them (kaiming_uniform_, a = √5), biases 0, normalisation
  // scales 1, BatchNorm running statistics reset.
  void reinitialize(const std::string& name = "");

  // The classification layer: the one set with set_head, else the file's tlkit_head, else the
  // last layer with a 2-D weight (the last Linear).
  std::string find_head() const;
  void set_head(const std::string& name);
  // New head for `num_classes` outputs; names default to class_0...; the new parameters are
  // trainable.
  void replace_head(std::int64_t num_classes, std::vector<std::string> class_names = {});
  // Records where the weights now come from (e.g. "tlkit train on fashion-mnist:DIR"), so a trained
  // model no longer reads as random-init; stored with the next store_metadata / export.
  void set_weights_origin(const std::string& weights);
  // The architecture's name (e.g. "resnet18"), stored with the next store_metadata / export.
  void set_architecture(const std::string& architecture);
  // One name per output, stored with the next store_metadata / export.
  void set_class_names(std::vector<std::string> names);
  // The preprocessing this model is fed with (shorter side -> resize, centre crop, mean / std per
  // channel); stored with the next store_metadata / export. The layer walk keeps the input size
  // given at load (LoadOptions::input_size).
  void set_preprocessing(std::int64_t resize, std::int64_t crop, std::vector<double> mean,
                         std::vector<double> std);
  // Writes the metadata (class names included) into the module's tlkit_* attributes.
  void store_metadata();

  void freeze_all();
  void unfreeze_all();
  // Layers before `name` (in forward order) stop training; the others are left as they are.
  void freeze_below(const std::string& name);
  // Layers from `name` on train; the layers before it are frozen.
  void unfreeze_from(const std::string& name);

  std::int64_t parameter_count() const;
  std::int64_t trainable_parameter_count() const;
  // Parameters with their qualified names ("features.0.weight"), in module order.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  // Parameters and buffers (BatchNorm statistics), as torchvision's state_dict names them.
  std::vector<std::pair<std::string, at::Tensor>> state_dict() const;

 private:
  struct Impl;
  explicit Classifier(std::shared_ptr<Impl> impl);
  void analyse();
  std::shared_ptr<Impl> impl_;
};

}  // namespace tlkit::model
