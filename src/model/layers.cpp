// Classifier: the layer walk (see the comment on Classifier), cutting at a layer, and freezing.

#include <algorithm>
#include <cmath>

#include <torch/nn/init.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/script_checks.h>

#include "classifier_impl.h"

namespace tlkit::model {
namespace detail {

std::string type_name(const torch::jit::Module& module) {
  const auto name = module.type()->name();
  return name ? name->name() : "Module";
}

bool has_matrix_weight(const torch::jit::Module& module) {
  if (!module.hasattr("weight")) return false;
  const auto weight = module.attr("weight");
  return weight.isTensor() && weight.toTensor().dim() == 2;
}

namespace {
void collect(const torch::jit::Module& module, const std::string& prefix,
             std::vector<LayerEntry>& out) {
  for (const auto& child : module.named_children()) {
    const std::string name = prefix.empty() ? child.name : prefix + "." + child.name;
    if (type_name(child.value) == "Sequential") {
      collect(child.value, name, out);
      continue;
    }
    LayerEntry entry{Layer{}, child.value, false};
    entry.info.index = out.size();
    entry.info.name = name;
    entry.info.type = type_name(child.value);
    for (const auto& p : child.value.parameters()) entry.info.params += p.numel();
    out.push_back(std::move(entry));
  }
}
}  // namespace

std::vector<LayerEntry> list_layers(const torch::jit::Module& module) {
  std::vector<LayerEntry> layers;
  collect(module, "", layers);
  return layers;
}

}  // namespace detail

namespace {

// Runs layers [first, last] on x; records each output shape (and where to flatten) when `record`.
at::Tensor run_layers(std::vector<LayerEntry>& layers, at::Tensor x, size_t first, size_t last,
                      bool record) {
  for (size_t i = first; i <= last && i < layers.size(); ++i) {
    auto& entry = layers[i];
    if (record) entry.flatten_before = x.dim() > 2 && detail::has_matrix_weight(entry.module);
    if (entry.flatten_before) x = x.flatten(1);
    x = entry.module.forward({x}).toTensor();
    if (record) entry.info.output_shape = x.sizes().vec();
  }
  return x;
}

// The index of layer `name` found at `index`, or of its last layer when it is a parent module
// ("features").
size_t last_layer_of(const std::vector<LayerEntry>& layers, size_t index, const std::string& name) {
  while (index + 1 < layers.size() && layers[index + 1].info.name.rfind(name + ".", 0) == 0)
    ++index;
  return index;
}

// A fixed, RNG-free probe input (leaves the user's random streams alone).
at::Tensor probe_input(std::int64_t channels, std::int64_t size, c10::Device device) {
  const auto numel = channels * size * size;
  return at::sin(at::arange(numel, at::TensorOptions().dtype(at::kFloat)) * 0.37)
      .reshape({1, channels, size, size})
      .to(device);
}

std::string describe_shape(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// What layer `entry` expects of its input, from its weight, when that tells ("" otherwise).
std::string expected_input(const LayerEntry& entry) {
  if (!entry.module.hasattr("weight") || !entry.module.attr("weight").isTensor()) return "";
  const auto weight = entry.module.attr("weight").toTensor();
  if (weight.dim() == 2) return "takes " + std::to_string(weight.size(1)) + " values per image";
  if (weight.dim() == 4) return "takes " + std::to_string(weight.size(1)) + " channels";
  return "";
}

// Runs the layers one by one on `input` and names the first that fails, with what it got and
// what it expects ("" when every layer runs: the failure lies in the model's own forward()).
std::string failing_layer(std::vector<LayerEntry> layers, at::Tensor x) {
  for (auto& entry : layers) {
    if (x.dim() > 2 && detail::has_matrix_weight(entry.module)) x = x.flatten(1);
    const auto shape = x.sizes().vec();
    try {
      const auto out = entry.module.forward({x});
      if (!out.isTensor()) return "";
      x = out.toTensor();
    } catch (const std::exception&) {
      const auto expected = expected_input(entry);
      return "layer '" + entry.info.name + "' (" + entry.info.type + ")" +
             (expected.empty() ? "" : " " + expected + ", but") + " gets an input of shape " +
             describe_shape(shape);
    }
  }
  return "";
}

// Common input sizes at which the model does run (at most three), to suggest one.
std::vector<std::int64_t> fitting_sizes(torch::jit::Module& module, std::int64_t channels,
                                        c10::Device device) {
  std::vector<std::int64_t> sizes;
  for (const std::int64_t size : {16, 28, 32, 64, 96, 128, 224, 256, 299}) {
    try {
      module.forward({probe_input(channels, size, device)});
      sizes.push_back(size);
    } catch (const std::exception&) {
    }
    if (sizes.size() == 3) break;
  }
  return sizes;
}

// "give --input-size 32", or which sizes to choose from.
std::string size_advice(const std::vector<std::int64_t>& fits) {
  const std::string resize = " (and --resize at least as large)";
  if (fits.size() == 1) {
    const auto size = std::to_string(fits[0]);
    return "it runs at " + size + "x" + size + ": give --input-size " + size + resize;
  }
  std::string list;
  for (size_t i = 0; i < fits.size(); ++i)
    list += (i == 0 ? "" : i + 1 == fits.size() ? " or " : ", ") + std::to_string(fits[i]);
  return (fits.empty() ? "give the input size the model was made for"
                       : "it runs at " + list + " pixels: give one of them") +
         " with --input-size N" + resize;
}

// The message for a model whose forward() fails on the probe `input` with `what`: a shape
// mismatch names the layer and the sizes that do fit.
std::string probe_failure(torch::jit::Module& module, const at::Tensor& input,
                          const std::string& what) {
  const auto size = std::to_string(input.size(2));
  const auto layer = failing_layer(detail::list_layers(module), input);
  const auto fits = fitting_sizes(module, input.size(1), input.device());
  if (layer.empty() && fits.empty()) {
    return tlkit::detail::concat("the model cannot classify a 1x", input.size(1), "x", size, "x",
                                 size, " batch (", what,
                                 "); tlkit needs a classifier whose forward(images) returns "
                                 "scores [N, classes]");
  }
  return tlkit::detail::concat("the model does not fit the input size ", size, "x", size, ": ",
                               layer.empty() ? "its forward() fails" : layer, " (", what, "); ",
                               size_advice(fits));
}

}  // namespace

void Classifier::analyse() {
  auto& impl = *impl_;
  at::NoGradGuard no_grad;
  const bool was_training = impl.module.is_training();
  impl.module.eval();
  const auto input = probe_input(impl.input_channels, impl.input_size, device());
  const std::string probe = "a 1x" + std::to_string(impl.input_channels) + "x" +
                            std::to_string(impl.input_size) + "x" +
                            std::to_string(impl.input_size) + " batch";
  c10::IValue result;
  try {
    result = impl.module.forward({input});
  } catch (const std::exception& e) {  // c10::Error, or the TorchScript interpreter's error
    const auto message = probe_failure(impl.module, input, short_message(e));
    impl.module.train(was_training);
    fail(message);
  }
  impl.module.train(was_training);
  TLKIT_CHECK(result.isTensor(),
              "the model's forward() does not return a tensor; tlkit needs a classifier "
              "whose forward(images) returns scores [N, classes]");
  const auto output = result.toTensor();
  TLKIT_CHECK(output.dim() == 2 && output.size(0) == 1, "the model's output for ", probe,
              " has shape ", describe_shape(output.sizes().vec()),
              ", not [N, classes]; tlkit needs an image classifier");
  impl.num_classes = output.size(1);

  impl.layers = detail::list_layers(impl.module);
  impl.walk_ok = false;
  if (impl.layers.empty()) return;
  impl.module.eval();
  try {
    const auto walked = run_layers(impl.layers, input, 0, impl.layers.size() - 1, true);
    impl.walk_ok = walked.sizes() == output.sizes() && at::allclose(walked, output, 1e-4, 1e-5);
  } catch (const std::exception& e) {
    logger()->debug("layer-by-layer walk failed: {}", short_message(e));
  }
  impl.module.train(was_training);
  if (!impl.walk_ok) {
    for (auto& entry : impl.layers) entry.info.output_shape.clear();
    logger()->warn(
        "running the model's layers one after another does not reproduce its forward(); "
        "layer output shapes are unknown and features cannot be cut at a layer");
  }
}

std::vector<Layer> Classifier::layers() const {
  std::vector<Layer> out;
  for (const auto& entry : impl_->layers) {
    Layer layer = entry.info;
    layer.trainable_params = 0;
    for (const auto& p : entry.module.parameters())
      layer.trainable_params += p.requires_grad() ? p.numel() : 0;
    out.push_back(std::move(layer));
  }
  return out;
}

size_t Classifier::layer_index(const std::string& name) const {
  const auto& layers = impl_->layers;
  for (const auto& entry : layers) {
    if (entry.info.name == name) return entry.info.index;
  }
  for (const auto& entry : layers) {
    if (entry.info.name.rfind(name + ".", 0) == 0) return entry.info.index;
  }
  std::string top;
  for (const auto& child : impl_->module.named_children())
    top += (top.empty() ? "" : ", ") + child.name;
  fail("no layer named '", name, "' in the model (top-level modules: ", top,
       "); run 'tlkit info --model M.pt' to list the layers");
}

at::Tensor Classifier::forward_until(const at::Tensor& images, const std::string& name,
                                     bool flatten) {
  TLKIT_CHECK(impl_->walk_ok, "cannot cut this model at layer '", name,
              "': running its layers one after "
              "another does not reproduce its forward() (not a Sequential-style model)");
  const size_t last = last_layer_of(impl_->layers, layer_index(name), name);
  TLKIT_CHECK(images.dim() == 4 && images.size(1) == impl_->input_channels,
              "the model takes images of shape [N, ", impl_->input_channels, ", H, W]; got ",
              images.sizes());
  auto x = run_layers(impl_->layers, images, 0, last, false);
  return flatten ? x.flatten(1) : x;
}

std::vector<at::Tensor> Classifier::forward_until(const at::Tensor& images,
                                                  const std::vector<std::string>& names,
                                                  bool flatten) {
  TLKIT_CHECK(!names.empty(), "forward_until: no layer named");
  // Each name's last layer, then the layers in order once.
  std::vector<size_t> lasts;
  for (const auto& name : names)
    lasts.push_back(last_layer_of(impl_->layers, layer_index(name), name));
  auto order = lasts;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  // An output that more layers run on is kept as a copy: a later in-place layer (ReLU) would
  // change it.
  std::vector<at::Tensor> by_layer(order.size());
  auto x = forward_until(images, impl_->layers[order.front()].info.name, false);
  for (size_t k = 0; k < order.size(); ++k) {
    if (k > 0) x = run_layers(impl_->layers, x, order[k - 1] + 1, order[k], false);
    by_layer[k] = k + 1 < order.size() ? x.clone() : x;
  }
  std::vector<at::Tensor> outputs;
  for (const auto last : lasts) {
    const auto k = std::lower_bound(order.begin(), order.end(), last) - order.begin();
    outputs.push_back(flatten ? by_layer[k].flatten(1) : by_layer[k]);
  }
  return outputs;
}

std::string Classifier::penultimate_layer() const { return feature_layer_for(find_head()); }

std::string Classifier::feature_layer_for(const std::string& name) const {
  size_t index = layer_index(name);
  while (index > 0) {
    --index;
    if (impl_->layers[index].info.type.rfind("Dropout", 0) != 0)
      return impl_->layers[index].info.name;
  }
  fail("'", name, "' is the model's first layer; there is no layer below it to take features from");
}

std::vector<std::int64_t> Classifier::input_shape(const std::string& name) const {
  const size_t first = layer_index(name);
  if (first == 0) return {1, impl_->input_channels, impl_->input_size, impl_->input_size};
  return impl_->layers[first - 1].info.output_shape;
}

at::Tensor Classifier::forward_from(const at::Tensor& input, const std::string& name) {
  TLKIT_CHECK(impl_->walk_ok, "cannot run this model from layer '", name,
              "': running its layers one after "
              "another does not reproduce its forward() (not a Sequential-style model)");
  const size_t first = layer_index(name);
  auto x = input;
  if (x.dim() == 2) {  // feature rows: check their width, give them the layer's input shape
    auto shape = input_shape(name);
    std::int64_t row = 1;
    for (size_t i = 1; i < shape.size(); ++i) row *= shape[i];
    TLKIT_CHECK(x.size(1) == row, "layer '", name, "' takes inputs of shape ",
                describe_shape(shape), " (", row, " values per row); got rows of ", x.size(1));
    shape[0] = x.size(0);
    if (shape.size() > 2 && !impl_->layers[first].flatten_before) x = x.reshape(shape);
  }
  return run_layers(impl_->layers, x, first, impl_->layers.size() - 1, false);
}

std::vector<std::pair<std::string, torch::jit::Module>> Classifier::layers_from(
    const std::string& name) const {
  std::vector<std::pair<std::string, torch::jit::Module>> out;
  for (size_t i = layer_index(name); i < impl_->layers.size(); ++i)
    out.emplace_back(impl_->layers[i].info.name, impl_->layers[i].module);
  return out;
}

void Classifier::reinitialize(const std::string& name) {
  at::NoGradGuard no_grad;
  std::vector<torch::jit::Module> modules;
  if (name.empty()) {
    modules.push_back(
        impl_->module);  // every parameter, also of models whose layers cannot be walked
  } else {
    for (auto& [layer, module] : layers_from(name)) modules.push_back(module);
  }
  for (auto& module : modules) {
    for (const auto& p : module.named_parameters(/*recurse=*/true)) {
      const bool is_bias = p.name == "bias" || (p.name.size() > 5 &&
                                                p.name.compare(p.name.size() - 5, 5, ".bias") == 0);
      if (p.value.dim() >= 2) {
        torch::nn::init::kaiming_uniform_(p.value,
                                          std::sqrt(5.0));  // torch's default for Linear / Conv
      } else if (is_bias) {
        p.value.zero_();
      } else {
        p.value.fill_(1.0);  // normalisation scale
      }
    }
    for (const auto& b : module.named_buffers(/*recurse=*/true)) {
      if (b.name.find("running_mean") != std::string::npos) b.value.zero_();
      if (b.name.find("running_var") != std::string::npos) b.value.fill_(1.0);
      if (b.name.find("num_batches_tracked") != std::string::npos) b.value.zero_();
    }
  }
}

namespace {
void set_trainable(const torch::jit::Module& module, bool on) {
  for (const auto& p : module.parameters()) p.set_requires_grad(on);
}
}  // namespace

void Classifier::freeze_all() { set_trainable(impl_->module, false); }
void Classifier::unfreeze_all() { set_trainable(impl_->module, true); }

void Classifier::freeze_below(const std::string& name) {
  const size_t first = layer_index(name);
  for (size_t i = 0; i < first; ++i) set_trainable(impl_->layers[i].module, false);
}

void Classifier::unfreeze_from(const std::string& name) {
  const size_t first = layer_index(name);
  for (size_t i = 0; i < impl_->layers.size(); ++i)
    set_trainable(impl_->layers[i].module, i >= first);
}

}  // namespace tlkit::model
