#pragma once
// Per-layer learning rates for transfer learning: "a smaller learning rate for the transferred
// layers, lower layers frozen" (Yosinski et al. 2014, "How transferable are features in deep
// neural networks?"; Howard & Ruder 2018, "Universal Language Model Fine-tuning": discriminative
// learning rates).
//
// Two ways to build the groups, both returning plain {name, lr, params} lists:
//  * rules: "regex=lr,regex=lr,..." matched (std::regex_match, whole name) against parameter names
//    such as "features.24.weight"; the first matching rule wins; parameters no rule matches get
//    `default_lr`. An lr of 0 freezes: requires_grad=false and the parameters are left out.
//  * depth decay: lr_k = lr · decay^k, where k counts parametrised layers from the top (the head
//  has
//    k = 0); a normalisation layer (BatchNorm...) shares k with the layer below it. Only layers
//    that are currently trainable take part, so it combines with Classifier::unfreeze_from.
// Each group carries its own lr, so any scheduler that scales per-group rates keeps their ratios.

#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include <tlkit/model/classifier.h>

namespace tlkit::model {

struct LrRule {
  std::string pattern;  // ECMAScript regex over the full parameter name
  double lr = 0;
};

struct ParamGroupSpec {
  std::string name;  // the rule's pattern, or the layer name for depth decay
  double lr = 0;
  std::vector<std::string> param_names;
  std::vector<at::Tensor> params;
};

// Parses "features.2[0-9].*=1e-4,classifier.*=1e-3"; commas inside [], {} or () stay in the
// pattern.
std::vector<LrRule> parse_lr_rules(const std::string& text);

// Groups from rules; sets requires_grad on every parameter (false where lr is 0).
std::vector<ParamGroupSpec> param_groups_from_rules(Classifier& model,
                                                    const std::vector<LrRule>& rules,
                                                    double default_lr);

// One group per trainable parametrised layer, lr · decay^k from the top. With `new_from` (a new,
// re-initialised head: the layers from it on) every layer of the head gets lr, and k counts from
// the layer below it (k = 1). A layer whose decay^k is under `floor` is frozen (requires_grad
// false) and left out: its updates would be negligible, and its backward pass is skipped (the
// layers below the lowest trainable one cost a forward pass only).
std::vector<ParamGroupSpec> param_groups_by_depth(Classifier& model, double lr, double decay,
                                                  const std::string& new_from = "",
                                                  double floor = 0);

// One group holding every trainable parameter at `lr`.
std::vector<ParamGroupSpec> single_param_group(const Classifier& model, double lr);

// torch::optim groups: each gets a clone of `prototype` (e.g. SGDOptions(0).momentum(0.9)) with its
// lr.
std::vector<torch::optim::OptimizerParamGroup> to_optimizer_groups(
    const std::vector<ParamGroupSpec>& groups, const torch::optim::OptimizerOptions& prototype);

}  // namespace tlkit::model
