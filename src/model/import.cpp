#include <tlkit/model/import.h>

#include "imagenet_classes.h"

#include <algorithm>
#include <map>

#include <torch/script.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/file_hash.h>

#include "torchvision_models.h"

namespace tlkit::model {
namespace {

constexpr std::int64_t kImageNetClasses = 1000;
constexpr size_t kNamesShown = 5;

std::string shape_text(at::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// "a, b, c and 4 more"
std::string first_few(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < kNamesShown; ++i) text += (i ? ", " : "") + names[i];
  if (names.size() > kNamesShown) text += " and " + std::to_string(names.size() - kNamesShown) + " more";
  return text;
}

bool is_batch_count(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Every parameter and buffer of `module` by its state_dict name.
std::vector<std::pair<std::string, at::Tensor>> module_state(const torch::jit::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters(true)) out.emplace_back(p.name, p.value);
  for (const auto& b : module.named_buffers(true)) out.emplace_back(b.name, b.value);
  return out;
}

// The class count the file's head gives (its last 2-D weight that the network also has).
std::int64_t head_rows(const torch::jit::Module& module, const StateDict& state) {
  std::string head;
  for (const auto& p : module.named_parameters(true))
    if (p.value.dim() == 2) head = p.name;
  for (const auto& [name, tensor] : state)
    if (name == head && tensor.dim() == 2) return tensor.size(0);
  return kImageNetClasses;
}

// Copies `state` into `module`, after checking that the names and shapes agree.
void load_state(const std::string& arch, torch::jit::Module& module, const StateDict& state) {
  std::map<std::string, at::Tensor> given(state.begin(), state.end());
  std::vector<std::string> missing, misshapen, unexpected;
  const auto wanted = module_state(module);
  std::map<std::string, bool> known;
  for (const auto& [name, tensor] : wanted) {
    known[name] = true;
    const auto it = given.find(name);
    if (it == given.end()) {
      if (!is_batch_count(name)) missing.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      misshapen.push_back(name + " " + shape_text(it->second.sizes()) + " (" + arch + ": " +
                          shape_text(tensor.sizes()) + ")");
    }
  }
  for (const auto& [name, tensor] : state)
    if (!known.count(name)) unexpected.push_back(name);
  TLKIT_CHECK(missing.empty() && unexpected.empty() && misshapen.empty(),
              "the weights do not fit ", arch, ":",
              missing.empty() ? "" : " missing " + first_few(missing) + ";",
              unexpected.empty() ? "" : " not in " + arch + ": " + first_few(unexpected) + ";",
              misshapen.empty() ? "" : " other shapes: " + first_few(misshapen) + ";",
              " is --arch right? (", state.size(), " tensors in the file, ", wanted.size(),
              " in ", arch, ")");
  {
    at::NoGradGuard no_grad;
    for (const auto& [name, tensor] : wanted) {
      const auto it = given.find(name);
      if (it != given.end()) tensor.copy_(it->second);
    }
  }
  for (const auto& p : module.parameters(true)) p.set_requires_grad(true);  // as torchvision's
}

}  // namespace

const std::vector<std::string>& importable_architectures() {
  return detail::torchvision_architectures();
}

Classifier build_imported(const std::string& arch, const StateDict& state,
                          const std::string& origin) {
  auto module = detail::build_torchvision(arch, kImageNetClasses);
  const auto classes = head_rows(module, state);
  if (classes != kImageNetClasses) module = detail::build_torchvision(arch, classes);
  load_state(arch, module, state);
  module.eval();
  Classifier model(module, LoadOptions{c10::kCPU, 224});
  model.set_architecture(arch);
  model.set_weights_origin(origin);
  model.set_preprocessing(256, 224, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
  // A 1000-class head is ImageNet-1k's (torchvision's weights): its names, in torchvision's order.
  if (classes == kImageNetClasses) model.set_class_names(detail::imagenet_class_names());
  model.store_metadata();
  return model;
}

Classifier import_torchvision(const std::string& arch, const std::filesystem::path& weights) {
  const auto& names = importable_architectures();
  if (std::find(names.begin(), names.end(), arch) == names.end())
    detail::build_torchvision(arch, kImageNetClasses);  // names the architectures there are
  const auto state = read_weights_file(weights);
  logger()->info("read {} tensors ({}) from {}", state.size(), weights_file_format(weights),
                 weights.string());
  return build_imported(arch, state,
                        "file:" + weights.filename().string() + " sha256:" + sha256_file(weights));
}

}  // namespace tlkit::model
