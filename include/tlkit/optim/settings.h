#pragma once
// Optimizer settings as plain values, and their text form "name:key=value,key=value".
//
//   parse_optimizer_settings("adam:lr=1e-3,betas=0.9/0.999,weight_decay=0")
//
// Names: sgd momentum nesterov adagrad rmsprop adam adamw ("momentum" is SGD with momentum 0.9 by
// default, "nesterov" is SGD with Nesterov momentum 0.9 by default). Keys are torch.optim's option
// names; each optimizer accepts only its own (optimizer_setting_keys). An unset field means "the
// torch default" (SGD has no default lr, as in torch).

#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace tlkit::optim {

struct OptimizerSettings {
  std::optional<double> lr;
  std::optional<double> momentum;
  std::optional<double> dampening;
  std::optional<bool> nesterov;
  std::optional<double> weight_decay;
  std::optional<double> lr_decay;
  std::optional<double> initial_accumulator_value;
  std::optional<double> eps;
  std::optional<double> alpha;
  std::optional<bool> centered;
  std::optional<std::tuple<double, double>> betas;
  std::optional<bool> amsgrad;
};

// An optimizer name with its settings.
struct OptimizerSpec {
  std::string name;
  OptimizerSettings settings;
};

// The optimizer names make_optimizer and parse_optimizer_settings accept.
std::vector<std::string> optimizer_names();

// The setting keys optimizer `name` accepts; throws tlkit::Error for an unknown name.
std::vector<std::string> optimizer_setting_keys(const std::string& name);

// Parses "name" or "name:key=value,..." (betas as "b1/b2", booleans as true/false/1/0). Throws
// tlkit::Error naming the valid names or keys for an unknown name or key, and for a bad value.
OptimizerSpec parse_optimizer_settings(const std::string& text);

// The text form of a spec with only the settings that are set, e.g. "adam:lr=0.001,amsgrad=true";
// parse_optimizer_settings reads it back.
std::string format_optimizer_settings(const OptimizerSpec& spec);

// torch.optim's default learning rate of optimizer `name` (Adam/AdamW 1e-3, AdaGrad/RMSProp 1e-2);
// none for the SGD family, which has no default in torch either. Throws for an unknown name.
std::optional<double> default_lr(const std::string& name);

// The learning rate a spec trains at: its lr, else the optimizer's torch default. Throws naming the
// fix for an SGD-family spec without lr.
double resolved_lr(const OptimizerSpec& spec);

// Throws tlkit::Error when `settings` sets a key optimizer `name` does not accept.
void check_settings_apply(const std::string& name, const OptimizerSettings& settings);

}  // namespace tlkit::optim
