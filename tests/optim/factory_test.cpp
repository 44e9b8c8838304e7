// make_optimizer and the "name:key=value" settings.

#include "optim/optim_test_util.h"

namespace tlkit::test::optim {
namespace {

using namespace tlkit::optim;  // NOLINT(google-build-using-namespace): the unit under test

OptimizerSettings lr_only(double lr) {
  OptimizerSettings settings;
  settings.lr = lr;
  return settings;
}

Groups one_group() {
  return {torch::optim::OptimizerParamGroup({torch::ones({3}).requires_grad_(true)})};
}

TEST(OptimFactory, BuildsEveryName) {
  const std::vector<std::string> expected = {"sgd",     "momentum", "nesterov", "adagrad",
                                             "rmsprop", "adam",     "adamw"};
  EXPECT_EQ(optimizer_names(), expected);
  for (const auto& name : optimizer_names()) {
    const auto spec = parse_optimizer_settings(name + ":lr=0.01");
    const OptimizerPtr optimizer = make_optimizer(spec, one_group());
    ASSERT_NE(optimizer, nullptr) << name;
    EXPECT_DOUBLE_EQ(optimizer->param_groups()[0].options().get_lr(), 0.01) << name;
  }
  EXPECT_NE(dynamic_cast<SGD*>(make_optimizer("sgd", one_group(), lr_only(0.1)).get()), nullptr);
  EXPECT_NE(dynamic_cast<AdaGrad*>(make_optimizer("adagrad", one_group()).get()), nullptr);
  EXPECT_NE(dynamic_cast<RMSProp*>(make_optimizer("rmsprop", one_group()).get()), nullptr);
  EXPECT_NE(dynamic_cast<Adam*>(make_optimizer("adam", one_group()).get()), nullptr);
  EXPECT_NE(dynamic_cast<AdamW*>(make_optimizer("adamw", one_group()).get()), nullptr);
}

TEST(OptimFactory, MomentumAndNesterovNamesAreSgdVariants) {
  const auto momentum = make_optimizer("momentum", one_group(), lr_only(0.1));
  const auto& m = static_cast<const SGDOptions&>(momentum->defaults());
  EXPECT_DOUBLE_EQ(m.momentum(), 0.9);
  EXPECT_FALSE(m.nesterov());
  const auto nesterov =
      make_optimizer(parse_optimizer_settings("nesterov:lr=0.1,momentum=0.8"), one_group());
  const auto& n = static_cast<const SGDOptions&>(nesterov->defaults());
  EXPECT_DOUBLE_EQ(n.momentum(), 0.8);
  EXPECT_TRUE(n.nesterov());
}

TEST(OptimFactory, ParsesEveryKindOfValue) {
  const auto spec =
      parse_optimizer_settings(" Adam : lr=1e-3, betas=0.8/0.99 ,eps=1e-6,amsgrad=true");
  EXPECT_EQ(spec.name, "adam");
  EXPECT_DOUBLE_EQ(*spec.settings.lr, 1e-3);
  EXPECT_EQ(*spec.settings.betas, std::make_tuple(0.8, 0.99));
  EXPECT_DOUBLE_EQ(*spec.settings.eps, 1e-6);
  EXPECT_TRUE(*spec.settings.amsgrad);
  EXPECT_FALSE(spec.settings.weight_decay.has_value());
  const auto adam = make_optimizer(spec, one_group());
  const auto& options = static_cast<const AdamOptions&>(adam->defaults());
  EXPECT_EQ(options.betas(), std::make_tuple(0.8, 0.99));
  EXPECT_TRUE(options.amsgrad());
  EXPECT_DOUBLE_EQ(options.weight_decay(), 0.0);  // the torch default
}

TEST(OptimFactory, FormatReadsBack) {
  for (const std::string text :
       {"adam:lr=0.001,betas=0.9/0.999,weight_decay=0", "sgd:lr=0.1,momentum=0.9,nesterov=true",
        "rmsprop:lr=0.01,alpha=0.9,centered=false", "adagrad", "adamw:lr=0.0003,amsgrad=true"}) {
    const auto spec = parse_optimizer_settings(text);
    EXPECT_EQ(format_optimizer_settings(spec), text);
  }
}

TEST(OptimFactory, RejectsUnknownNamesKeysAndValues) {
  expect_option_error([] { parse_optimizer_settings("adamax:lr=0.1"); },
                      "valid names: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw");
  expect_option_error([] { parse_optimizer_settings("adam:momentum=0.9"); },
                      "valid keys: lr, betas, eps, weight_decay, amsgrad");
  expect_option_error([] { parse_optimizer_settings("adam:lr=fast"); }, "lr='fast'");
  expect_option_error([] { parse_optimizer_settings("adam:betas=0.9"); }, "betas=0.9/0.999");
  expect_option_error([] { parse_optimizer_settings("rmsprop:centered=maybe"); }, "true/false");
  expect_option_error([] { parse_optimizer_settings("sgd:lr"); }, "is not KEY=VALUE");
  // One grammar for every spec: a repeated key is an error (it trained at the last value).
  expect_option_error([] { parse_optimizer_settings("adam:lr=1e-3,lr=1e-2"); }, "'lr' twice");
  expect_option_error([] { make_optimizer("nadam", one_group()); }, "unknown optimizer 'nadam'");
  OptimizerSettings with_alpha;
  with_alpha.alpha = 0.9;
  expect_option_error([&] { make_optimizer("adam", one_group(), with_alpha); },
                      "no setting 'alpha'");
  expect_option_error([] { make_optimizer("sgd", one_group()); }, "needs lr");
  expect_option_error([] { make_optimizer(parse_optimizer_settings("adam:lr=-1"), one_group()); },
                      "lr = -1");
}

// Groups with options of another type keep their learning rate (per-layer rates survive).
TEST(OptimFactory, GroupsKeepTheirLearningRates) {
  Groups groups;
  groups.emplace_back(std::vector<at::Tensor>{torch::ones({2}).requires_grad_(true)},
                      std::make_unique<torch::optim::SGDOptions>(0.001));
  groups.emplace_back(std::vector<at::Tensor>{torch::ones({2}).requires_grad_(true)});
  groups.emplace_back(std::vector<at::Tensor>{torch::ones({2}).requires_grad_(true)},
                      std::make_unique<AdamOptions>(AdamOptions(0.5).amsgrad(true)));
  const auto adam =
      make_optimizer(parse_optimizer_settings("adam:lr=0.01,eps=1e-6"), std::move(groups));
  const auto& g = adam->param_groups();
  EXPECT_DOUBLE_EQ(g[0].options().get_lr(), 0.001);
  EXPECT_DOUBLE_EQ(static_cast<const AdamOptions&>(g[0].options()).eps(), 1e-6);
  EXPECT_DOUBLE_EQ(g[1].options().get_lr(), 0.01);
  EXPECT_DOUBLE_EQ(g[2].options().get_lr(), 0.5);
  EXPECT_TRUE(static_cast<const AdamOptions&>(g[2].options()).amsgrad());
}

}  // namespace
}  // namespace tlkit::test::optim
