#include <tlkit/model/classifier.h>

#include <algorithm>
#include <cmath>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/script_checks.h>

#include "classifier_impl.h"

namespace fs = std::filesystem;

namespace tlkit::model {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::vector<std::string> default_class_names(std::int64_t count) {
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < count; ++i) names.push_back("class_" + std::to_string(i));
  return names;
}

ModelMetadata read_metadata(const torch::jit::Module& m) {
  ModelMetadata md;
  const auto has = [&](const char* name) { return m.hasattr(name); };
  try {
    if (has("tlkit_architecture")) {
      md.present = true;
      md.architecture = m.attr("tlkit_architecture").toStringRef();
    }
    if (has("tlkit_input_size")) md.input_size = m.attr("tlkit_input_size").toInt();
    if (has("tlkit_resize")) md.resize = m.attr("tlkit_resize").toInt();
    if (has("tlkit_crop")) md.crop = m.attr("tlkit_crop").toInt();
    if (has("tlkit_weights")) md.weights = m.attr("tlkit_weights").toStringRef();
    if (has("tlkit_head")) md.head = m.attr("tlkit_head").toStringRef();
    const auto doubles = [&](const char* name, std::vector<double>& out) {
      if (!has(name)) return;
      out.clear();
      const auto list = m.attr(name);  // keep the IValue alive while its list is read
      for (const auto& v : list.toListRef()) out.push_back(v.toDouble());
    };
    doubles("tlkit_mean", md.mean);
    doubles("tlkit_std", md.std);
    if (has("tlkit_class_names")) {
      const auto names = m.attr("tlkit_class_names");
      for (const auto& v : names.toListRef()) md.class_names.push_back(v.toStringRef());
    }
  } catch (const c10::Error& e) {
    fail("the model's tlkit_* metadata attributes have unexpected types (",
         first_line(e.what_without_backtrace()), "); re-export it with scripts/export_vgg16.py");
  }
  return md;
}

void put_attribute(torch::jit::Module& m, const std::string& name, const c10::TypePtr& type,
                   c10::IValue value) {
  if (m.hasattr(name)) {
    m.setattr(name, std::move(value));
  } else {
    m.register_attribute(name, type, std::move(value));
  }
}

// A model traced in training mode keeps dropout / batch norm in training mode for good: its
// outputs are random, also when evaluating (a model traced in eval mode is warned about when
// it is trained, see ScriptNetwork).
void check_not_traced_in_training(const torch::jit::Module& module) {
  auto layers = fixed_mode_layers(module);
  layers.erase(std::remove_if(layers.begin(), layers.end(),
                              [](const FixedModeLayer& layer) { return !layer.training; }),
               layers.end());
  TLKIT_CHECK(layers.empty(),
              "the model was traced (torch.jit.trace) in training mode, not scripted: its layers ",
              describe_layers(layers),
              " stay in training mode also when evaluating, so its outputs are random (dropout) "
              "or depend on the batch (batch norm); export it with torch.jit.script(model), or "
              "trace it after model.eval()");
}

}  // namespace

Classifier::Classifier(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Classifier Classifier::load(const fs::path& path, const LoadOptions& options) {
  std::error_code error;
  const auto status = fs::status(path, error);
  TLKIT_CHECK(
      fs::exists(status), "cannot read model '", path.string(), "': ",
      error && error != std::errc::no_such_file_or_directory ? error.message() : "no such file",
      "; export one with scripts/export_vgg16.py (see models/README.md)");
  TLKIT_CHECK(fs::is_regular_file(status), "cannot read model '", path.string(), "': not a file");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path.string(), options.device);
  } catch (const std::exception& e) {  // c10::Error, or the TorchScript parser's error
    fail("cannot read model '", path.string(),
         "': the file is damaged or not a TorchScript archive (", short_message(e),
         "); export it again with torch.jit.script(model).save() or scripts/export_vgg16.py");
  }
  Classifier classifier(std::move(module), options);
  classifier.impl_->path = path;
  return classifier;
}

Classifier::Classifier(torch::jit::Module module, const LoadOptions& options)
    : impl_(std::make_shared<Impl>()) {
  auto& impl = *impl_;
  impl.module = std::move(module);
  impl.metadata = read_metadata(impl.module);
  if (!impl.metadata.present) {
    logger()->debug(
        "model has no tlkit metadata (not exported by scripts/export_vgg16.py): assuming {}x{} "
        "input "
        "and ImageNet preprocessing",
        impl.metadata.input_size, impl.metadata.input_size);
  }
  bool any_parameter = false;
  for (const auto& p : impl.module.parameters()) {
    if (!any_parameter && p.dim() == 4) impl.input_channels = p.size(1);
    any_parameter = true;
  }
  TLKIT_CHECK(any_parameter,
              "the model has no parameters, so there is nothing to transfer; "
              "export a classifier with scripts/export_vgg16.py");
  check_finite(impl.module);
  check_not_traced_in_training(impl.module);
  impl.input_size = options.input_size > 0 ? options.input_size : impl.metadata.input_size;
  TLKIT_CHECK(impl.input_size > 0, "the model's input size ", impl.input_size, " is not positive");
  analyse();
  auto& names = impl.metadata.class_names;
  if (static_cast<std::int64_t>(names.size()) != impl.num_classes) {
    if (!names.empty()) {
      logger()->warn("the model stores {} class names but has {} outputs; using class_0...",
                     names.size(), impl.num_classes);
    }
    names = default_class_names(impl.num_classes);
  }
}

torch::jit::Module& Classifier::module() { return impl_->module; }
const torch::jit::Module& Classifier::module() const { return impl_->module; }
const ModelMetadata& Classifier::metadata() const { return impl_->metadata; }
const fs::path& Classifier::path() const { return impl_->path; }
std::int64_t Classifier::num_classes() const { return impl_->num_classes; }
std::int64_t Classifier::input_channels() const { return impl_->input_channels; }
bool Classifier::walk_matches_forward() const { return impl_->walk_ok; }

at::Tensor Classifier::forward(const at::Tensor& images) {
  TLKIT_CHECK(images.dim() == 4 && images.size(1) == impl_->input_channels,
              "the model takes images of shape [N, ", impl_->input_channels, ", H, W]; got ",
              images.sizes());
  return impl_->module.forward({images}).toTensor();
}

void Classifier::train(bool on) { impl_->module.train(on); }
bool Classifier::is_training() const { return impl_->module.is_training(); }
void Classifier::to(c10::Device device) { impl_->module.to(device); }

c10::Device Classifier::device() const {
  for (const auto& p : impl_->module.parameters()) return p.device();
  return c10::kCPU;
}

Classifier Classifier::clone() const {
  auto copy = std::make_shared<Impl>(*impl_);
  {
    // Copied outside autograd (a copy of a trainable parameter would otherwise be a non-leaf
    // that no optimizer takes), each parameter as trainable as its original.
    at::NoGradGuard no_grad;
    copy->module = impl_->module.clone();
    const auto from = impl_->module.parameters(/*recurse=*/true);
    const auto to = copy->module.parameters(/*recurse=*/true);
    for (auto a = from.begin(), b = to.begin(); a != from.end() && b != to.end(); ++a, ++b)
      (*b).requires_grad_((*a).requires_grad());
  }
  copy->layers = detail::list_layers(copy->module);
  for (size_t i = 0; i < copy->layers.size(); ++i) {
    copy->layers[i].info = impl_->layers[i].info;
    copy->layers[i].flatten_before = impl_->layers[i].flatten_before;
  }
  return Classifier(std::move(copy));
}

std::string Classifier::find_head() const {
  const auto& impl = *impl_;
  if (!impl.head_override.empty()) return impl.head_override;
  for (const auto& entry : impl.layers) {
    if (entry.info.name == impl.metadata.head && detail::has_matrix_weight(entry.module))
      return entry.info.name;
  }
  for (auto it = impl.layers.rbegin(); it != impl.layers.rend(); ++it) {
    if (detail::has_matrix_weight(it->module)) return it->info.name;
  }
  fail("the model has no Linear layer (a layer with a 2-D weight) to use as its classification "
       "head, which tlkit replaces for your classes: export a model that ends in one (e.g. "
       "torch.nn.Linear)");
}

void Classifier::set_head(const std::string& name) {
  for (const auto& entry : impl_->layers) {
    if (entry.info.name != name) continue;
    TLKIT_CHECK(detail::has_matrix_weight(entry.module), "layer '", name, "' (", entry.info.type,
                ") cannot be the head: it has no 2-D weight; pick a Linear layer (see tlkit info)");
    impl_->head_override = name;
    return;
  }
  fail("no layer named '", name,
       "' to use as the head; run 'tlkit info --model M.pt' to list the layers");
}

void Classifier::replace_head(std::int64_t num_classes, std::vector<std::string> class_names) {
  TLKIT_CHECK(num_classes >= 1, "replace_head: the number of classes must be at least 1, got ",
              num_classes);
  if (class_names.empty()) class_names = default_class_names(num_classes);
  TLKIT_CHECK(static_cast<std::int64_t>(class_names.size()) == num_classes,
              "replace_head: ", class_names.size(), " class names given for ", num_classes,
              " classes");
  const std::string name = find_head();
  auto head = impl_->layers.at(layer_index(name)).module;
  const at::Tensor weight = head.attr("weight").toTensor();
  const std::int64_t fan_in = weight.size(1);
  // torch.nn.Linear.reset_parameters: kaiming_uniform_(a=√5) on the weight is U(±1/√fan_in), same
  // for the bias.
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  {
    at::NoGradGuard no_grad;
    head.register_parameter(
        "weight", at::empty({num_classes, fan_in}, weight.options()).uniform_(-bound, bound),
        false);
    if (head.hasattr("bias") && head.attr("bias").isTensor()) {
      head.register_parameter(
          "bias", at::empty({num_classes}, weight.options()).uniform_(-bound, bound), false);
    }
  }
  head.attr("weight").toTensor().set_requires_grad(true);
  if (head.hasattr("bias") && head.attr("bias").isTensor())
    head.attr("bias").toTensor().set_requires_grad(true);
  impl_->metadata.class_names = std::move(class_names);
  impl_->metadata.head = name;
  analyse();
  TLKIT_CHECK(impl_->num_classes == num_classes, "after replacing head '", name,
              "' the model gives ", impl_->num_classes, " outputs, not ", num_classes, "; is '",
              name, "' really the last layer?");
  store_metadata();
}

void Classifier::set_weights_origin(const std::string& weights) {
  TLKIT_CHECK(!weights.empty(), "the weights' origin must not be empty");
  impl_->metadata.weights = weights;
}

void Classifier::set_architecture(const std::string& architecture) {
  TLKIT_CHECK(!architecture.empty(), "the architecture's name must not be empty");
  impl_->metadata.architecture = architecture;
  impl_->metadata.present = true;
}

void Classifier::set_class_names(std::vector<std::string> names) {
  TLKIT_CHECK(static_cast<std::int64_t>(names.size()) == num_classes(), "got ", names.size(),
              " class names for a head of ", num_classes(), " outputs");
  impl_->metadata.class_names = std::move(names);
  impl_->metadata.present = true;
}

void Classifier::set_preprocessing(std::int64_t resize, std::int64_t crop, std::vector<double> mean,
                                   std::vector<double> std) {
  TLKIT_CHECK(crop > 0 && resize >= crop, "preprocessing: resize (", resize,
              ") must be >= the crop (", crop, ") > 0");
  TLKIT_CHECK(mean.size() == std.size() && (mean.size() == 1 || mean.size() == 3),
              "preprocessing: give 1 or 3 means and as many stds, got ", mean.size(), " and ",
              std.size());
  auto& md = impl_->metadata;
  md.resize = resize;
  md.crop = crop;
  md.input_size = crop;
  md.mean = std::move(mean);
  md.std = std::move(std);
}

void Classifier::store_metadata() {
  auto& m = impl_->module;
  const auto& md = impl_->metadata;
  const auto str = c10::StringType::get();
  const auto integer = c10::IntType::get();
  put_attribute(m, "tlkit_format", integer, std::int64_t{1});
  put_attribute(m, "tlkit_architecture", str, md.architecture);
  put_attribute(m, "tlkit_input_size", integer, impl_->input_size);
  put_attribute(m, "tlkit_resize", integer, md.resize);
  put_attribute(m, "tlkit_crop", integer, md.crop);
  put_attribute(m, "tlkit_mean", c10::ListType::ofFloats(), c10::List<double>(md.mean));
  put_attribute(m, "tlkit_std", c10::ListType::ofFloats(), c10::List<double>(md.std));
  put_attribute(m, "tlkit_weights", str, md.weights);
  put_attribute(m, "tlkit_class_names", c10::ListType::ofStrings(),
                c10::List<std::string>(md.class_names));
  put_attribute(m, "tlkit_head", str, find_head());
}

std::int64_t Classifier::parameter_count() const {
  std::int64_t count = 0;
  for (const auto& p : impl_->module.parameters()) count += p.numel();
  return count;
}

std::int64_t Classifier::trainable_parameter_count() const {
  std::int64_t count = 0;
  for (const auto& p : impl_->module.parameters()) count += p.requires_grad() ? p.numel() : 0;
  return count;
}

std::vector<std::pair<std::string, at::Tensor>> Classifier::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : impl_->module.named_parameters(true)) out.emplace_back(p.name, p.value);
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> Classifier::state_dict() const {
  auto out = named_parameters();
  for (const auto& b : impl_->module.named_buffers(true)) out.emplace_back(b.name, b.value);
  return out;
}

}  // namespace tlkit::model
