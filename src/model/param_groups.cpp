#include <tlkit/core/strings.h>
#include <tlkit/model/param_groups.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace tlkit::model {
namespace {

// Splits at commas that are not inside brackets, braces or parentheses.
std::vector<std::string> split_rules(const std::string& text) {
  std::vector<std::string> parts;
  std::string current;
  int depth = 0;
  bool escaped = false;
  for (const char c : text) {
    if (!escaped && (c == '[' || c == '{' || c == '(')) ++depth;
    if (!escaped && (c == ']' || c == '}' || c == ')')) depth = std::max(0, depth - 1);
    if (c == ',' && depth == 0 && !escaped) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
    escaped = !escaped && c == '\\';
  }
  parts.push_back(current);
  return parts;
}

// The layer a parameter belongs to: the longest layer name that prefixes "name.".
const Layer* owner_of(const std::vector<Layer>& layers, const std::string& param) {
  const Layer* best = nullptr;
  for (const auto& layer : layers) {
    if (param.rfind(layer.name + ".", 0) == 0 && (!best || layer.name.size() > best->name.size()))
      best = &layer;
  }
  return best;
}

bool is_normalisation(const std::string& type) { return type.find("Norm") != std::string::npos; }

}  // namespace

std::vector<LrRule> parse_lr_rules(const std::string& text) {
  std::vector<LrRule> rules;
  for (const auto& raw : split_rules(text)) {
    const std::string part = trim(raw);
    if (part.empty()) continue;
    const auto eq = part.rfind('=');
    TLKIT_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < part.size(),
                "bad learning-rate rule '", part,
                "'; write REGEX=LR, e.g. 'classifier.*=1e-3' (0 freezes)");
    LrRule rule{trim(part.substr(0, eq)), 0};
    const std::string value = trim(part.substr(eq + 1));
    try {
      size_t used = 0;
      rule.lr = std::stod(value, &used);
      TLKIT_CHECK(used == value.size(), "");
    } catch (const std::exception&) {
      fail("bad learning rate '", value, "' in rule '", part,
           "'; write a number like 1e-4 (0 freezes)");
    }
    TLKIT_CHECK(rule.lr >= 0 && std::isfinite(rule.lr), "learning rate ", rule.lr, " in rule '",
                part, "' must be >= 0 (0 freezes)");
    try {
      std::regex check(rule.pattern);
    } catch (const std::regex_error& e) {
      fail("bad regular expression '", rule.pattern, "' in rule '", part, "': ", e.what());
    }
    rules.push_back(std::move(rule));
  }
  TLKIT_CHECK(!rules.empty(), "no learning-rate rules in '", text,
              "'; write e.g. 'features.*=0,classifier.*=1e-3'");
  return rules;
}

std::vector<ParamGroupSpec> param_groups_from_rules(Classifier& model,
                                                    const std::vector<LrRule>& rules,
                                                    double default_lr) {
  TLKIT_CHECK(default_lr >= 0, "the default learning rate must be >= 0, got ", default_lr);
  std::vector<std::regex> patterns;
  for (const auto& rule : rules) patterns.emplace_back(rule.pattern);
  std::vector<ParamGroupSpec> groups(rules.size() + 1);
  for (size_t i = 0; i < rules.size(); ++i) groups[i] = {rules[i].pattern, rules[i].lr, {}, {}};
  groups.back() = {"(default)", default_lr, {}, {}};
  std::vector<size_t> matched(rules.size(), 0);
  for (auto& [name, param] : model.named_parameters()) {
    size_t g = rules.size();
    for (size_t i = 0; i < rules.size(); ++i) {
      if (std::regex_match(name, patterns[i])) {
        g = i;
        ++matched[i];
        break;
      }
    }
    param.set_requires_grad(groups[g].lr > 0);
    groups[g].param_names.push_back(name);
    groups[g].params.push_back(param);
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    if (matched[i] == 0)
      logger()->warn("learning-rate rule '{}' matches no parameter", rules[i].pattern);
  }
  std::vector<ParamGroupSpec> kept;
  for (auto& group : groups) {
    if (group.lr > 0 && !group.params.empty()) kept.push_back(std::move(group));
  }
  return kept;
}

std::vector<ParamGroupSpec> param_groups_by_depth(Classifier& model, double lr, double decay,
                                                  const std::string& new_from, double floor) {
  TLKIT_CHECK(lr > 0, "the learning rate must be > 0, got ", lr);
  TLKIT_CHECK(decay > 0 && decay <= 1, "the learning-rate decay per layer must be in (0, 1], got ",
              decay);
  TLKIT_CHECK(floor >= 0 && floor < 1,
              "the learning-rate floor (a fraction of the top layer's) must be in [0, 1), got ",
              floor);
  const auto layers = model.layers();
  // Depth from the bottom for each parametrised layer; normalisation layers join the layer below.
  std::vector<int> depth(layers.size(), -1);
  int top = -1;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].has_params()) continue;
    if (!(is_normalisation(layers[i].type) && top >= 0)) ++top;
    depth[i] = top;
  }
  // A new head counts as one level above the layers below it.
  const size_t head_start = new_from.empty() ? layers.size() : model.layer_index(new_from);
  int head_depth = top;
  if (head_start < layers.size()) {
    head_depth = 0;
    for (size_t i = 0; i < head_start; ++i) head_depth = std::max(head_depth, depth[i] + 1);
  }
  std::vector<ParamGroupSpec> groups;
  for (size_t i = layers.size(); i-- > 0;) {
    if (depth[i] < 0 || layers[i].trainable_params == 0) continue;
    const int k = i >= head_start ? 0 : head_depth - depth[i];
    if (std::pow(decay, k) < floor) {  // under the floor: frozen, and left out
      for (const auto& [name, param] : model.named_parameters())
        if (owner_of(layers, name) == &layers[i]) param.set_requires_grad(false);
      continue;
    }
    ParamGroupSpec group{layers[i].name, lr * std::pow(decay, k), {}, {}};
    groups.push_back(std::move(group));
  }
  for (const auto& [name, param] : model.named_parameters()) {
    if (!param.requires_grad()) continue;
    const Layer* layer = owner_of(layers, name);
    TLKIT_CHECK(layer != nullptr, "parameter '", name,
                "' belongs to no layer; use learning-rate rules instead");
    for (auto& group : groups) {
      if (group.name == layer->name) {
        group.param_names.push_back(name);
        group.params.push_back(param);
      }
    }
  }
  return groups;
}

std::vector<ParamGroupSpec> single_param_group(const Classifier& model, double lr) {
  TLKIT_CHECK(lr > 0, "the learning rate must be > 0, got ", lr);
  ParamGroupSpec group{"all", lr, {}, {}};
  for (const auto& [name, param] : model.named_parameters()) {
    if (!param.requires_grad()) continue;
    group.param_names.push_back(name);
    group.params.push_back(param);
  }
  if (group.params.empty()) return {};
  return {group};
}

std::vector<torch::optim::OptimizerParamGroup> to_optimizer_groups(
    const std::vector<ParamGroupSpec>& groups, const torch::optim::OptimizerOptions& prototype) {
  TLKIT_CHECK(!groups.empty(),
              "no trainable parameters: every layer is frozen; unfreeze some "
              "(e.g. the head) before creating an optimizer");
  std::vector<torch::optim::OptimizerParamGroup> out;
  for (const auto& group : groups) {
    auto options = prototype.clone();
    options->set_lr(group.lr);
    out.emplace_back(group.params, std::move(options));
  }
  return out;
}

}  // namespace tlkit::model
