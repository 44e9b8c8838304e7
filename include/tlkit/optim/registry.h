#pragma once
// The optimizers tlkit has, one row each (as timm's OptimInfo registry): the name, the setting
// keys it accepts, torch.optim's default learning rate, a line of help and the builder. The spec
// parser, the factory, the CLI help and the benchmark all read this table, so adding an optimizer
// is its files, one row and its tests.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include <tlkit/optim/settings.h>

namespace tlkit::optim {

struct OptimInfo {
  std::string name;
  std::vector<std::string> keys;    // torch.optim's option names, in their order
  std::optional<double> default_lr; // none: torch has none either (SGD)
  std::string help;
  // The optimizer over `groups` with `settings` (unset ones at torch's defaults).
  std::function<std::unique_ptr<torch::optim::Optimizer>(
      std::vector<torch::optim::OptimizerParamGroup>, const OptimizerSettings&)>
      build;
};

// Every optimizer, in the order the help lists them.
const std::vector<OptimInfo>& optimizer_registry();
// The row of `name`; throws tlkit::Error listing the valid names for an unknown one.
const OptimInfo& optimizer_info(const std::string& name);

}  // namespace tlkit::optim
