// make_optimizer: a tlkit optimizer from a name and plain settings.

#include <tlkit/optim/factory.h>

#include <utility>

#include <tlkit/core/error.h>
#include <tlkit/optim/adagrad.h>
#include <tlkit/optim/adam.h>
#include <tlkit/optim/adamw.h>
#include <tlkit/optim/rmsprop.h>
#include <tlkit/optim/sgd.h>

namespace tlkit::optim {
namespace {

using Groups = std::vector<torch::optim::OptimizerParamGroup>;
using OptimizerPtr = std::unique_ptr<torch::optim::Optimizer>;

// Groups with options of the optimizer's type keep them; groups with other options keep only their
// learning rate on top of `defaults`; groups without options get the defaults in the constructor.
template <typename Options>
Groups adapt_groups(Groups groups, const Options& defaults) {
  for (std::size_t g = 0; g < groups.size(); ++g) {
    auto& group = groups[g];
    if (!group.has_options() || dynamic_cast<const Options*>(&group.options())) continue;
    double lr = 0;
    try {
      lr = group.options().get_lr();
    } catch (const c10::Error&) {
      fail("make_optimizer: param group ", g,
           " has options without a learning rate; give it no options or options of a "
           "torch::optim / tlkit::optim optimizer");
    }
    auto options = std::make_unique<Options>(defaults);
    options->lr(lr);
    group.set_options(std::move(options));
  }
  return groups;
}

OptimizerPtr make_sgd(Groups groups, const OptimizerSettings& s, double default_momentum,
                      bool default_nesterov, const std::string& name) {
  TLKIT_CHECK(s.lr.has_value(), "optimizer '", name,
              "' needs lr (torch.optim.SGD has no default learning rate), e.g. \"", name,
              ":lr=0.01\"");
  SGDOptions options(*s.lr);
  options.momentum(s.momentum.value_or(default_momentum));
  options.nesterov(s.nesterov.value_or(default_nesterov));
  if (s.dampening) options.dampening(*s.dampening);
  if (s.weight_decay) options.weight_decay(*s.weight_decay);
  return std::make_unique<SGD>(adapt_groups(std::move(groups), options), options);
}

OptimizerPtr make_adagrad(Groups groups, const OptimizerSettings& s) {
  AdaGradOptions options;
  if (s.lr) options.lr(*s.lr);
  if (s.lr_decay) options.lr_decay(*s.lr_decay);
  if (s.weight_decay) options.weight_decay(*s.weight_decay);
  if (s.initial_accumulator_value) options.initial_accumulator_value(*s.initial_accumulator_value);
  if (s.eps) options.eps(*s.eps);
  return std::make_unique<AdaGrad>(adapt_groups(std::move(groups), options), options);
}

OptimizerPtr make_rmsprop(Groups groups, const OptimizerSettings& s) {
  RMSPropOptions options;
  if (s.lr) options.lr(*s.lr);
  if (s.alpha) options.alpha(*s.alpha);
  if (s.eps) options.eps(*s.eps);
  if (s.weight_decay) options.weight_decay(*s.weight_decay);
  if (s.momentum) options.momentum(*s.momentum);
  if (s.centered) options.centered(*s.centered);
  return std::make_unique<RMSProp>(adapt_groups(std::move(groups), options), options);
}

// Adam and AdamW share their option names.
template <typename Optimizer, typename Options>
OptimizerPtr make_adam_like(Groups groups, const OptimizerSettings& s) {
  Options options;
  if (s.lr) options.lr(*s.lr);
  if (s.betas) options.betas(*s.betas);
  if (s.eps) options.eps(*s.eps);
  if (s.weight_decay) options.weight_decay(*s.weight_decay);
  if (s.amsgrad) options.amsgrad(*s.amsgrad);
  return std::make_unique<Optimizer>(adapt_groups(std::move(groups), options), options);
}

}  // namespace

OptimizerPtr make_optimizer(const std::string& name, Groups groups,
                            const OptimizerSettings& settings) {
  check_settings_apply(name, settings);  // also rejects unknown names
  if (name == "sgd") return make_sgd(std::move(groups), settings, 0.0, false, name);
  if (name == "momentum") return make_sgd(std::move(groups), settings, 0.9, false, name);
  if (name == "nesterov") return make_sgd(std::move(groups), settings, 0.9, true, name);
  if (name == "adagrad") return make_adagrad(std::move(groups), settings);
  if (name == "rmsprop") return make_rmsprop(std::move(groups), settings);
  if (name == "adam") return make_adam_like<Adam, AdamOptions>(std::move(groups), settings);
  if (name == "adamw") return make_adam_like<AdamW, AdamWOptions>(std::move(groups), settings);
  fail("make_optimizer: optimizer '", name, "' is listed but has no builder");
}

OptimizerPtr make_optimizer(const OptimizerSpec& spec, Groups groups) {
  return make_optimizer(spec.name, std::move(groups), spec.settings);
}

}  // namespace tlkit::optim
