// make_optimizer: a tlkit optimizer from a name and plain settings.

#include <tlkit/optim/factory.h>
#include <tlkit/optim/registry.h>

#include <utility>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>
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

// Calls `visit` with the options as their tlkit type; false when they are none of them.
template <typename Visit>
bool with_tlkit_options(torch::optim::OptimizerOptions& options, Visit visit) {
  if (auto* o = dynamic_cast<SGDOptions*>(&options)) return visit(*o), true;
  if (auto* o = dynamic_cast<AdaGradOptions*>(&options)) return visit(*o), true;
  if (auto* o = dynamic_cast<RMSPropOptions*>(&options)) return visit(*o), true;
  if (auto* o = dynamic_cast<AdamOptions*>(&options)) return visit(*o), true;
  if (auto* o = dynamic_cast<AdamWOptions*>(&options)) return visit(*o), true;
  return false;
}

}  // namespace

double weight_decay_of(const torch::optim::OptimizerOptions& options) {
  double decay = 0;
  with_tlkit_options(const_cast<torch::optim::OptimizerOptions&>(options),
                     [&](auto& o) { decay = o.weight_decay(); });
  return decay;
}

void set_weight_decay(torch::optim::OptimizerOptions& options, double weight_decay) {
  with_tlkit_options(options, [&](auto& o) { o.weight_decay(weight_decay); });
}

const std::vector<OptimInfo>& optimizer_registry() {
  using S = const OptimizerSettings&;
  static const std::vector<OptimInfo> rows = {
      {"sgd", {"lr", "momentum", "dampening", "nesterov", "weight_decay"}, std::nullopt,
       "stochastic gradient descent (torch.optim.SGD, momentum 0)",
       [](Groups g, S s) { return make_sgd(std::move(g), s, 0.0, false, "sgd"); }},
      {"momentum", {"lr", "momentum", "dampening", "weight_decay"}, std::nullopt,
       "SGD with momentum 0.9 (Sutskever et al. 2013)",
       [](Groups g, S s) { return make_sgd(std::move(g), s, 0.9, false, "momentum"); }},
      {"nesterov", {"lr", "momentum", "weight_decay"}, std::nullopt,
       "SGD with Nesterov momentum 0.9",
       [](Groups g, S s) { return make_sgd(std::move(g), s, 0.9, true, "nesterov"); }},
      {"adagrad", {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"}, 1e-2,
       "AdaGrad (Duchi et al. 2011)", [](Groups g, S s) { return make_adagrad(std::move(g), s); }},
      {"rmsprop", {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"}, 1e-2,
       "RMSProp (Tieleman & Hinton 2012)",
       [](Groups g, S s) { return make_rmsprop(std::move(g), s); }},
      {"adam", {"lr", "betas", "eps", "weight_decay", "amsgrad"}, 1e-3,
       "Adam with bias correction (Kingma & Ba 2015)",
       [](Groups g, S s) { return make_adam_like<Adam, AdamOptions>(std::move(g), s); }},
      {"adamw", {"lr", "betas", "eps", "weight_decay", "amsgrad"}, 1e-3,
       "Adam with decoupled weight decay (Loshchilov & Hutter 2019)",
       [](Groups g, S s) { return make_adam_like<AdamW, AdamWOptions>(std::move(g), s); }},
  };
  return rows;
}

const OptimInfo& optimizer_info(const std::string& name) {
  for (const auto& info : optimizer_registry())
    if (info.name == name) return info;
  fail("unknown optimizer '", name, "'; valid names: ", join(optimizer_names()));
}

OptimizerPtr make_optimizer(const std::string& name, Groups groups,
                            const OptimizerSettings& settings) {
  check_settings_apply(name, settings);  // also rejects unknown names
  return optimizer_info(name).build(std::move(groups), settings);
}

OptimizerPtr make_optimizer(const OptimizerSpec& spec, Groups groups) {
  return make_optimizer(spec.name, std::move(groups), spec.settings);
}

}  // namespace tlkit::optim
