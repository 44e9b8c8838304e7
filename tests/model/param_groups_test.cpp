#include <tlkit/model/param_groups.h>

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>

#include "model/fixtures.h"

using tlkit::model::Classifier;

namespace {

const tlkit::model::ParamGroupSpec* group_named(
    const std::vector<tlkit::model::ParamGroupSpec>& groups, const std::string& name) {
  for (const auto& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

}  // namespace

TEST(ParamGroups, ParseRulesKeepsCommasInsideBrackets) {
  const auto rules = tlkit::model::parse_lr_rules(
      "features.[0-9]{1,2}\\..*=1e-4, classifier.*=1e-3,features.0.*=0");
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].pattern, "features.[0-9]{1,2}\\..*");
  EXPECT_EQ(rules[0].lr, 1e-4);
  EXPECT_EQ(rules[1].pattern, "classifier.*");
  EXPECT_EQ(rules[2].lr, 0.0);
  EXPECT_THROW(tlkit::model::parse_lr_rules("classifier.*"), tlkit::Error);
  EXPECT_THROW(tlkit::model::parse_lr_rules("classifier.*=fast"), tlkit::Error);
  EXPECT_THROW(tlkit::model::parse_lr_rules("classifier.*=-1"), tlkit::Error);
  EXPECT_THROW(tlkit::model::parse_lr_rules("classifier.([=1"), tlkit::Error);
  EXPECT_THROW(tlkit::model::parse_lr_rules(" , "), tlkit::Error);
}

TEST(ParamGroups, RulesAssignRatesAndFreezeZeroRate) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  // vgg_tiny: features.0 (conv), features.3 (conv), classifier.0/.3/.6 (linear).
  const auto rules =
      tlkit::model::parse_lr_rules("features\\.0\\..*=0,features.*=1e-4,classifier\\.6\\..*=1e-2");
  const auto groups = tlkit::model::param_groups_from_rules(model, rules, 1e-3);
  ASSERT_EQ(groups.size(), 3u);
  const auto* lower = group_named(groups, "features.*");
  const auto* head = group_named(groups, "classifier\\.6\\..*");
  const auto* rest = group_named(groups, "(default)");
  ASSERT_TRUE(lower && head && rest);
  EXPECT_EQ(lower->param_names, (std::vector<std::string>{"features.3.weight", "features.3.bias"}));
  EXPECT_EQ(head->lr, 1e-2);
  EXPECT_EQ(rest->param_names.size(), 4u);  // classifier.0 and classifier.3
  for (const auto& layer : model.layers()) {
    if (layer.name == "features.0") {
      EXPECT_FALSE(layer.trainable());
    }
    if (layer.name == "features.3") {
      EXPECT_TRUE(layer.trainable());
    }
  }
  // Every trainable parameter is in exactly one group.
  int64_t grouped = 0;
  for (const auto& g : groups) {
    for (const auto& p : g.params) grouped += p.numel();
  }
  EXPECT_EQ(grouped, model.trainable_parameter_count());
}

TEST(ParamGroups, DepthDecayCountsParametrisedLayersFromTheTop) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.unfreeze_from("features.3");
  const auto groups = tlkit::model::param_groups_by_depth(model, 1e-2, 0.5);
  const std::vector<std::string> names{"classifier.6", "classifier.3", "classifier.0",
                                       "features.3"};
  ASSERT_EQ(groups.size(), names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    EXPECT_EQ(groups[k].name, names[k]);
    EXPECT_DOUBLE_EQ(groups[k].lr, 1e-2 * std::pow(0.5, static_cast<double>(k)));
    EXPECT_EQ(groups[k].params.size(), 2u);
  }
  EXPECT_THROW(tlkit::model::param_groups_by_depth(model, 1e-2, 1.5), tlkit::Error);
}

TEST(ParamGroups, AFloorFreezesTheLayersWhoseRateWouldFallUnderIt) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.unfreeze_all();
  // k = 0..4 from classifier.6 down to features.0; 0.5^k < 0.2 from k = 3 on.
  const auto groups = tlkit::model::param_groups_by_depth(model, 1e-2, 0.5, "", 0.2);
  const std::vector<std::string> names{"classifier.6", "classifier.3", "classifier.0"};
  ASSERT_EQ(groups.size(), names.size());
  for (size_t k = 0; k < names.size(); ++k) EXPECT_EQ(groups[k].name, names[k]);
  for (const auto& [name, param] : model.named_parameters())
    EXPECT_EQ(param.requires_grad(), name.rfind("classifier.", 0) == 0) << name;
  // A floor at the rate of the lowest layer keeps it (under, not at).
  model.unfreeze_all();
  EXPECT_EQ(tlkit::model::param_groups_by_depth(model, 1e-2, 0.5, "", 0.0625).size(), 5u);
  EXPECT_EQ(tlkit::model::param_groups_by_depth(model, 1e-2, 0.5, "", 0).size(), 5u);
  EXPECT_THROW(tlkit::model::param_groups_by_depth(model, 1e-2, 0.5, "", 1), tlkit::Error);
  EXPECT_THROW(tlkit::model::param_groups_by_depth(model, 1e-2, 0.5, "", -0.1), tlkit::Error);
}

TEST(ParamGroups, ANewHeadTrainsAtTheFullRateAndTheDecayStartsBelowIt) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.unfreeze_from("features.0");
  const auto groups = tlkit::model::param_groups_by_depth(model, 1e-2, 0.5, "classifier.0");
  const std::vector<std::pair<std::string, double>> expected{{"classifier.6", 1e-2},
                                                             {"classifier.3", 1e-2},
                                                             {"classifier.0", 1e-2},
                                                             {"features.3", 5e-3},
                                                             {"features.0", 2.5e-3}};
  ASSERT_EQ(groups.size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(groups[k].name, expected[k].first);
    EXPECT_DOUBLE_EQ(groups[k].lr, expected[k].second) << groups[k].name;
  }
  EXPECT_THROW(tlkit::model::param_groups_by_depth(model, 1e-2, 0.5, "nope"), tlkit::Error);
}

TEST(ParamGroups, OptimizerGroupsKeepTheirRates) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  const auto groups = tlkit::model::param_groups_by_depth(model, 0.1, 0.1);
  torch::optim::SGD sgd(
      tlkit::model::to_optimizer_groups(groups, torch::optim::SGDOptions(1.0).momentum(0.9)),
      torch::optim::SGDOptions(1.0));
  ASSERT_EQ(sgd.param_groups().size(), groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    const auto& options =
        static_cast<const torch::optim::SGDOptions&>(sgd.param_groups()[i].options());
    EXPECT_DOUBLE_EQ(options.lr(), groups[i].lr);
    EXPECT_EQ(options.momentum(), 0.9);
  }
  // One step moves only what is in a group.
  model.freeze_all();
  model.unfreeze_from("classifier.6");
  auto head_only = tlkit::model::to_optimizer_groups(tlkit::model::single_param_group(model, 0.5),
                                                     torch::optim::SGDOptions(0.5));
  torch::optim::SGD step(head_only, torch::optim::SGDOptions(0.5));
  const auto before = model.state_dict();
  std::vector<torch::Tensor> copies;
  for (const auto& [name, t] : before) copies.push_back(t.clone());
  model.forward(torch::randn({2, 3, 16, 16})).sum().backward();
  step.step();
  for (size_t i = 0; i < before.size(); ++i) {
    const bool moved = !torch::equal(before[i].second, copies[i]);
    EXPECT_EQ(moved, before[i].first.rfind("classifier.6.", 0) == 0) << before[i].first;
  }
  model.freeze_all();
  EXPECT_THROW(tlkit::model::to_optimizer_groups(tlkit::model::single_param_group(model, 0.5),
                                                 torch::optim::SGDOptions(0.5)),
               tlkit::Error);
}
