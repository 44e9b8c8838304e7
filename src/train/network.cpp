#include <tlkit/train/network.h>

#include <atomic>

#include <torch/csrc/autograd/generated/variable_factories.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/script_checks.h>

namespace tlkit::train {

std::vector<torch::Tensor> Network::trainable_parameters() const {
  std::vector<torch::Tensor> trainable;
  for (const auto& p : parameters())
    if (p.requires_grad()) trainable.push_back(p);
  return trainable;
}

std::int64_t Network::parameter_count(bool trainable_only) const {
  std::int64_t count = 0;
  for (const auto& p : parameters())
    if (!trainable_only || p.requires_grad()) count += p.numel();
  return count;
}

namespace {

// Train mode for a TorchScript module, except that frozen layers stay frozen: a module whose
// parameters are all frozen (e.g. a BatchNorm below the unfrozen layers) runs in eval mode, so its
// running statistics do not drift on the new data; without dropout, Dropout layers stay in eval;
// without batch-norm updates, BatchNorm layers too.
void set_script_mode(torch::jit::Module& module, bool on, bool dropout, bool batch_norm) {
  module.train(on);
  if (!on) return;
  for (auto child : module.modules()) {
    bool has_params = false, all_frozen = true;
    for (const auto& p : child.parameters(/*recurse=*/false)) {
      has_params = true;
      all_frozen = all_frozen && !p.requires_grad();
    }
    if (has_params && all_frozen && child.children().size() == 0) child.train(false);
    const auto type = child.type()->name() ? child.type()->name()->name() : std::string();
    if (!dropout && type.find("Dropout") != std::string::npos) child.train(false);
    if (!batch_norm && type.find("BatchNorm") != std::string::npos) child.train(false);
  }
}

using NamedModules = std::vector<std::pair<std::string, torch::jit::Module>>;

// A traced model's dropout / batch norm keep the mode they were traced in (see
// fixed_mode_layers), whatever train() asks: said once per process, when training starts.
void warn_if_traced(const NamedModules& parts, bool dropout) {
  static std::atomic<bool> warned{false};
  if (warned.load()) return;
  std::vector<model::FixedModeLayer> fixed;
  for (const auto& [name, module] : parts) {
    for (auto layer : model::fixed_mode_layers(module)) {
      if (layer.training) continue;  // refused when the model is loaded
      if (!dropout && layer.op.find("dropout") != std::string::npos) continue;  // off anyway
      layer.name = layer.name.empty() ? name : name.empty() ? layer.name : name + "." + layer.name;
      fixed.push_back(std::move(layer));
    }
  }
  if (fixed.empty() || warned.exchange(true)) return;
  logger()->warn(
      "this model was traced (torch.jit.trace), not scripted: its layers {} stay in evaluation "
      "mode while training, unlike in PyTorch (dropout stays off, batch norm keeps its stored "
      "statistics); export the model with torch.jit.script(model) to train them as PyTorch "
      "does",
      model::describe_layers(fixed));
}

}  // namespace

void ScriptNetwork::train(bool on) {
  if (on) warn_if_traced({{"", module_}}, dropout_enabled());
  set_script_mode(module_, on, dropout_enabled(), batch_norm_updates());
}

void ScriptLayersNetwork::train(bool on) {
  if (on) warn_if_traced(layers_, dropout_enabled());
  for (auto& [name, module] : layers_)
    set_script_mode(module, on, dropout_enabled(), batch_norm_updates());
  training_ = on;
}

std::vector<torch::Tensor> ScriptLayersNetwork::parameters() const {
  std::vector<torch::Tensor> params;
  for (const auto& [name, module] : layers_)
    for (const auto& p : module.parameters(/*recurse=*/true)) params.push_back(p);
  return params;
}

NamedTensors ScriptLayersNetwork::named_state() const {
  NamedTensors state;
  for (const auto& [name, module] : layers_) {
    for (const auto& p : module.named_parameters(/*recurse=*/true))
      state.emplace_back(name + "." + p.name, p.value);
    for (const auto& b : module.named_buffers(/*recurse=*/true))
      state.emplace_back(name + "." + b.name, b.value);
  }
  return state;
}

void ScriptLayersNetwork::to(const torch::Device& device) {
  for (auto& [name, module] : layers_) module.to(device);
}

torch::Tensor ScriptNetwork::forward(const torch::Tensor& input) {
  auto output = module_.forward({input});
  TLKIT_CHECK(output.isTensor(), "the TorchScript model's forward returned ", output.tagKind(),
              ", not a tensor of class scores");
  return output.toTensor();
}

std::vector<torch::Tensor> ScriptNetwork::parameters() const {
  std::vector<torch::Tensor> params;
  for (const auto& p : module_.parameters(/*recurse=*/true)) params.push_back(p);
  return params;
}

NamedTensors ScriptNetwork::named_state() const {
  NamedTensors state;
  for (const auto& p : module_.named_parameters(/*recurse=*/true))
    state.emplace_back(p.name, p.value);
  for (const auto& b : module_.named_buffers(/*recurse=*/true)) state.emplace_back(b.name, b.value);
  return state;
}

void ModuleNetwork::train(bool on) {
  module_->train(on);
  if (!on || (dropout_enabled() && batch_norm_updates())) return;
  for (const auto& child : module_->modules()) {
    if (!dropout_enabled() && child->name().find("Dropout") != std::string::npos) child->eval();
    if (!batch_norm_updates() && child->name().find("BatchNorm") != std::string::npos)
      child->eval();
  }
}

NamedTensors ModuleNetwork::named_state() const {
  NamedTensors state;
  for (const auto& p : module_->named_parameters(/*recurse=*/true))
    state.emplace_back(p.key(), p.value());
  for (const auto& b : module_->named_buffers(/*recurse=*/true))
    state.emplace_back(b.key(), b.value());
  return state;
}

NamedTensors clone_state(const Network& network) {
  torch::NoGradGuard no_grad;
  NamedTensors copy;
  for (const auto& [name, tensor] : network.named_state())
    copy.emplace_back(name, tensor.detach().clone());
  return copy;
}

void copy_state(Network& network, const NamedTensors& state) {
  torch::NoGradGuard no_grad;
  auto target = network.named_state();
  TLKIT_CHECK(target.size() == state.size(), "cannot restore weights: the model has ",
              target.size(), " tensors, the saved state ", state.size(),
              "; was it saved from a different model?");
  for (size_t i = 0; i < target.size(); ++i) {
    TLKIT_CHECK(
        target[i].first == state[i].first && target[i].second.sizes() == state[i].second.sizes(),
        "cannot restore weights: tensor ", i, " is '", target[i].first, "' ",
        target[i].second.sizes(), " in the model but '", state[i].first, "' ",
        state[i].second.sizes(), " in the saved state");
    target[i].second.copy_(state[i].second);
  }
}

}  // namespace tlkit::train
