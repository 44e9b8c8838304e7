#include <tlkit/model/script_checks.h>

#include <algorithm>
#include <sstream>

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/runtime/graph_iterator.h>
#include <torch/script.h>

#include <tlkit/core/error.h>

namespace tlkit::model {
namespace {

bool is_mode_argument(const c10::Argument& argument) {
  return argument.type()->kind() == c10::TypeKind::BoolType &&
         (argument.name() == "train" || argument.name() == "training");
}

// The ops of one module's forward() whose train/training flag is a constant; `reads_training`
// tells whether the graph reads a `training` attribute anywhere.
std::vector<FixedModeLayer> fixed_ops(const std::string& name, const torch::jit::Module& module,
                                      bool& reads_training) {
  std::vector<FixedModeLayer> found;
  const auto method = module.find_method("forward");
  if (!method) return found;
  auto graph = method->graph();
  torch::jit::DepthFirstGraphNodeIterator nodes(graph);
  for (auto* node = nodes.next(); node != nullptr; node = nodes.next()) {
    if (node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training")
      reads_training = true;
    const auto* schema = node->maybeSchema();
    if (schema == nullptr) continue;
    const auto& arguments = schema->arguments();
    for (size_t i = 0; i < arguments.size() && i < node->inputs().size(); ++i) {
      if (!is_mode_argument(arguments[i])) continue;
      if (const auto flag = torch::jit::constant_as<bool>(node->inputs()[i]))
        found.push_back({name, node->kind().toUnqualString(), *flag});
    }
  }
  return found;
}

}  // namespace

std::vector<FixedModeLayer> fixed_mode_layers(const torch::jit::Module& module) {
  std::vector<FixedModeLayer> fixed;
  for (const auto& child : module.named_modules()) {
    bool reads_training = false;
    auto ops = fixed_ops(child.name, child.value, reads_training);
    if (reads_training) continue;  // scripted: the flag is passed on purpose
    fixed.insert(fixed.end(), ops.begin(), ops.end());
  }
  return fixed;
}

std::string describe_layers(const std::vector<FixedModeLayer>& layers) {
  constexpr size_t kShown = 4;
  std::string text;
  for (size_t i = 0; i < layers.size() && i < kShown; ++i) {
    text += (i ? ", '" : "'") + (layers[i].name.empty() ? "forward" : layers[i].name) + "' (" +
            layers[i].op + ")";
  }
  if (layers.size() > kShown) text += " and " + std::to_string(layers.size() - kShown) + " more";
  return text;
}

std::string short_message(const std::string& what) {
  std::string first, last_error;
  std::istringstream lines(what);
  for (std::string line; std::getline(lines, line);) {
    if (first.empty()) first = line;
    for (const std::string prefix : {"RuntimeError: ", "Exception: "})
      if (line.rfind(prefix, 0) == 0) last_error = line.substr(prefix.size());
  }
  auto line = last_error.empty() ? first : last_error;
  // "type.present() INTERNAL ASSERT FAILED at "...parser.cpp":534, please report a bug ..."
  if (const auto at = line.find(" INTERNAL ASSERT FAILED"); at != std::string::npos)
    return "LibTorch's internal check '" + line.substr(0, at) + "' failed";
  return line.empty() ? "LibTorch gave no reason" : line;
}

std::string short_message(const std::exception& error) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&error);
  return short_message(torch_error ? torch_error->what_without_backtrace() : error.what());
}

std::string first_nonfinite(const std::vector<std::pair<std::string, at::Tensor>>& state) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> sums;
  std::vector<size_t> index;
  for (size_t i = 0; i < state.size(); ++i) {
    const auto& tensor = state[i].second;
    if (!tensor.defined() || !tensor.is_floating_point() || tensor.numel() == 0) continue;
    sums.push_back(tensor.sum(at::kDouble));
    index.push_back(i);
  }
  if (sums.empty()) return {};
  const auto finite = at::stack(sums).isfinite().cpu();
  const auto* ok = finite.data_ptr<bool>();
  for (size_t k = 0; k < index.size(); ++k)
    if (!ok[k]) return state[index[k]].first;
  return {};
}

void check_finite(const torch::jit::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : module.named_parameters(/*recurse=*/true))
    tensors.emplace_back(p.name, p.value);
  const auto parameters = tensors.size();
  for (const auto& b : module.named_buffers(/*recurse=*/true))
    tensors.emplace_back(b.name, b.value);
  const auto name = first_nonfinite(tensors);
  if (name.empty()) return;
  const auto found = std::find_if(tensors.begin(), tensors.end(),
                                  [&](const auto& named) { return named.first == name; });
  const auto& t = found->second;
  at::NoGradGuard no_grad;
  const auto nans = at::isnan(t).sum().item<std::int64_t>();
  const auto bad = t.numel() - at::isfinite(t).sum().item<std::int64_t>();
  fail("the model's ",
       found - tensors.begin() < static_cast<std::ptrdiff_t>(parameters) ? "parameter" : "buffer",
       " '", name, "' holds ",
       nans == bad ? "NaN"
       : nans == 0 ? "infinite values"
                   : "NaN and infinite values",
       " (", bad, " of ", t.numel(),
       " values): the weights are damaged (e.g. saved after training diverged); export the "
       "model again from good weights");
}

}  // namespace tlkit::model
