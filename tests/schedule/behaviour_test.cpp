// Schedule behaviour beyond the torch reference: argument validation, closed forms, state archive
// checks, momentum hooks for other optimizers, shared base lrs, misuse errors.

#include <cmath>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <tlkit/core/error.h>

#include "schedule/schedule_reference.h"

#include "support/test_support.h"

namespace {

using namespace tlkit::schedule;
using Optimizer = torch::optim::Optimizer;

std::unique_ptr<Optimizer> two_groups() { return tlkit::test::make_reference_optimizer("sgd"); }

// Round-trips an OutputArchive through bytes into an InputArchive.
torch::serialize::InputArchive reopen(torch::serialize::OutputArchive& out) {
  std::ostringstream bytes;
  out.save_to(bytes);
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);
  return in;
}

using tlkit::test::expect_error;

TEST(ScheduleValidation, BadArgumentsAreClearErrors) {
  auto o = two_groups();
  using O = OneCycleLROptions;
  using P = ReduceLROnPlateauOptions;
  expect_error([&] { StepLR(*o, 0); }, "step_size");
  expect_error([&] { StepLR(*o, 5, -0.1); }, "gamma");
  expect_error([&] { MultiStepLR(*o, {3, -1}); }, "milestones");
  expect_error([&] { ConstantLR(*o, 0.0); }, "factor");
  expect_error([&] { ConstantLR(*o, 1.5); }, "factor");
  expect_error([&] { ConstantLR(*o, 0.5, 0); }, "total_iters");
  expect_error([&] { LinearLR(*o, 0.0); }, "start_factor");
  expect_error([&] { LinearLR(*o, 0.5, 1.5); }, "end_factor");
  expect_error([&] { ExponentialLR(*o, 0.0); }, "gamma");
  expect_error([&] { PolynomialLR(*o, 0); }, "total_iters");
  expect_error([&] { PolynomialLR(*o, 5, -1.0); }, "power");
  expect_error([&] { CosineAnnealingLR(*o, 0); }, "T_max");
  expect_error([&] { CosineAnnealingLR(*o, 10, -0.1); }, "eta_min");
  expect_error([&] { CosineAnnealingWarmRestarts(*o, 0); }, "T_0");
  expect_error([&] { CosineAnnealingWarmRestarts(*o, 5, 0); }, "T_mult");
  expect_error([&] { OneCycleLR(*o, O(0.1)); }, "total_steps");
  expect_error([&] { OneCycleLR(*o, O(0.1).total_steps(0)); }, "total_steps");
  expect_error([&] { OneCycleLR(*o, O(0.1).epochs(3)); }, "steps_per_epoch");
  expect_error([&] { OneCycleLR(*o, O(-0.1).total_steps(10)); }, "max_lr");
  expect_error([&] { OneCycleLR(*o, O({0.1, 0.2, 0.3}).total_steps(10)); }, "max_lr");
  expect_error([&] { OneCycleLR(*o, O(0.1).total_steps(10).pct_start(1.5)); }, "pct_start");
  expect_error([&] { OneCycleLR(*o, O(0.1).total_steps(10).div_factor(0)); }, "div_factor");
  expect_error([&] { OneCycleLR(*o, O(0.1).total_steps(10).max_momentum({1.5})); }, "momentum");
  expect_error([&] { OneCycleLR(*o, O(0.1).total_steps(10).pct_start(0.1)); }, "too small");
  expect_error([&] { ReduceLROnPlateau(*o, P().factor(1.0)); }, "factor");
  expect_error([&] { ReduceLROnPlateau(*o, P().patience(-1)); }, "patience");
  expect_error([&] { ReduceLROnPlateau(*o, P().min_lr({0.1, 0.2, 0.3})); }, "min_lr");
  expect_error([&] { ReduceLROnPlateau(*o, P().threshold(-1)); }, "threshold");
}

TEST(ScheduleValidation, SequentialChecksItsParts) {
  auto o = two_groups();
  auto other = two_groups();
  auto a = std::make_shared<LinearLR>(*o, 0.1, 1.0, 3);
  auto b = std::make_shared<ExponentialLR>(*o, 0.9);
  auto foreign = std::make_shared<ExponentialLR>(*other, 0.9);
  auto plateau = std::make_shared<ReduceLROnPlateau>(*o);
  expect_error([&] { SequentialLR(*o, {}, {}); }, "at least one");
  expect_error([&] { SequentialLR(*o, {a, b}, {}); }, "one milestone fewer");
  expect_error([&] { SequentialLR(*o, {a, foreign}, {3}); }, "another optimizer");
  expect_error([&] { SequentialLR(*o, {a, plateau}, {3}); }, "needs a metric");
  expect_error([&] { SequentialLR(*o, {a, b, b}, {3, 3}); }, "increasing");
}

TEST(ScheduleBehaviour, MisuseIsAClearError) {
  auto o = two_groups();
  ReduceLROnPlateau plateau(*o);
  expect_error([&] { plateau.step(); }, "step(metric)");
  expect_error([&] { plateau.step_to(3); }, "cannot jump");
  StepLR step(*o, 2);
  expect_error([&] { step.step_to(1.5); }, "whole number");

  auto short_run = two_groups();
  OneCycleLR one_cycle(*short_run, OneCycleLROptions(0.1).total_steps(10));
  for (int i = 0; i < 10; ++i) one_cycle.step();  // torch allows reaching last_epoch == total_steps
  expect_error([&] { one_cycle.step(); }, "total_steps is 10");

  auto grows = two_groups();
  ExponentialLR exp(*grows, 0.5);
  grows->add_param_group(
      torch::optim::OptimizerParamGroup({torch::zeros({1}, torch::requires_grad())}));
  expect_error([&] { exp.step(); }, "after adding every param group");
}

TEST(ScheduleBehaviour, ClosedFormsAgreeWithTheChainableSteps) {
  using Factory = std::function<std::unique_ptr<LRScheduler>(Optimizer&)>;
  const std::vector<Factory> factories = {
      [](Optimizer& o) { return std::make_unique<StepLR>(o, 3, 0.5); },
      [](Optimizer& o) {
        return std::make_unique<MultiStepLR>(o, std::vector<std::int64_t>{2, 5, 5}, 0.3);
      },
      [](Optimizer& o) { return std::make_unique<ConstantLR>(o, 0.25, 4); },
      [](Optimizer& o) { return std::make_unique<LinearLR>(o, 0.2, 0.8, 6); },
      [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.9); },
      [](Optimizer& o) { return std::make_unique<PolynomialLR>(o, 8, 2.0); },
      [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 9, 0.001); },
      [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 3, 2, 0.001); },
  };
  for (const auto& factory : factories) {
    auto chained_optimizer = two_groups();
    auto chained = factory(*chained_optimizer);
    for (int epoch = 1; epoch <= 12; ++epoch) {
      chained->step();
      auto jump_optimizer = two_groups();
      auto jumped = factory(*jump_optimizer);
      jumped->step_to(epoch);
      for (std::size_t g = 0; g < 2; ++g) {
        EXPECT_NEAR(jumped->get_last_lr()[g], chained->get_last_lr()[g],
                    1e-12 * chained->base_lrs()[g])
            << chained->name() << " epoch " << epoch;
      }
    }
  }
}

TEST(ScheduleBehaviour, RestartsFollowTheSgdrFormulaWhenSteppingAndJumping) {
  auto o = two_groups();
  CosineAnnealingWarmRestarts restarts(*o, 10);
  for (int i = 0; i < 20; ++i) restarts.step();
  restarts.step_to(26);
  restarts.step();  // epoch 27, as in torch's documented example
  EXPECT_EQ(restarts.last_epoch(), 27);
  EXPECT_DOUBLE_EQ(restarts.T_cur(), 7.0);
  const double pi = std::acos(-1.0);
  EXPECT_NEAR(restarts.get_last_lr()[0], 0.1 * (1 + std::cos(pi * 7 / 10)) / 2, 1e-15);
  EXPECT_NEAR(restarts.get_last_lr()[1], 0.01 * (1 + std::cos(pi * 7 / 10)) / 2, 1e-16);
}

TEST(ScheduleBehaviour, BaseLrsAreSharedWhileSchedulesLiveOnTheOptimizer) {
  auto o = two_groups();
  {
    LinearLR warmup(*o, 0.5, 1.0, 4);  // sets lr to 0.05 / 0.005
    CosineAnnealingLR cosine(*o, 10);  // like torch: base lrs are the original ones
    EXPECT_EQ(cosine.base_lrs(), (std::vector<double>{0.1, 0.01}));
  }
  // Every schedule is gone: a new one starts from the current lrs.
  ExponentialLR fresh(*o, 0.9);
  EXPECT_NEAR(fresh.base_lrs()[0], 0.05, 1e-17);
  expect_error([&] { StepLR(*o, 0); }, "step_size");  // a failed construction leaves nothing behind
  StepLR after(*o, 2);
  EXPECT_EQ(after.base_lrs(), fresh.base_lrs());
}

TEST(ScheduleState, WrongVersionTypeOrGroupsAreClearErrors) {
  auto o = two_groups();
  StepLR step(*o, 3);
  torch::serialize::OutputArchive saved;
  step.save(saved);
  auto in = reopen(saved);
  ExponentialLR exp(*o, 0.9);
  expect_error([&] { exp.load(in); }, "holds a StepLR state");

  torch::serialize::OutputArchive future;
  future.write("format_version", c10::IValue(std::int64_t{99}));
  future.write("type", c10::IValue(std::string("StepLR")));
  auto future_in = reopen(future);
  expect_error([&] { step.load(future_in); }, "format version 99");

  torch::serialize::OutputArchive empty;
  empty.write("something", c10::IValue(1.0));
  auto empty_in = reopen(empty);
  expect_error([&] { step.load(empty_in); }, "not a tlkit scheduler state");

  std::vector<torch::optim::OptimizerParamGroup> one_group = {
      torch::optim::OptimizerParamGroup({torch::zeros({2}, torch::requires_grad())})};
  torch::optim::SGD single(one_group, torch::optim::SGDOptions(0.1));
  StepLR single_step(single, 3);
  auto again = reopen(saved);
  expect_error([&] { single_step.load(again); }, "param groups");
}

TEST(ScheduleState, PlateauStateSurvivesBeforeAnyMetric) {
  auto o = two_groups();
  ReduceLROnPlateau plateau(*o, ReduceLROnPlateauOptions().patience(1));
  torch::serialize::OutputArchive out;
  plateau.save(out);  // best is +inf here
  auto in = reopen(out);
  auto o2 = two_groups();
  ReduceLROnPlateau restored(*o2, ReduceLROnPlateauOptions().patience(1));
  restored.load(in);
  EXPECT_TRUE(std::isinf(restored.best()));
  for (double metric : {1.0, 1.0, 1.0}) {
    plateau.step(metric);
    restored.step(metric);
  }
  EXPECT_EQ(restored.get_last_lr(), plateau.get_last_lr());
  EXPECT_NEAR(restored.get_last_lr()[0], 0.01, 1e-17);
}

// An optimizer whose options LibTorch does not know: cycled after one registration.
struct PlainOptions : public torch::optim::OptimizerCloneableOptions<PlainOptions> {
  explicit PlainOptions(double lr) : lr_(lr) {}
  TORCH_ARG(double, lr);
  TORCH_ARG(double, momentum) = 0.5;

 public:
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

class PlainOptimizer : public torch::optim::Optimizer {
 public:
  explicit PlainOptimizer(std::vector<at::Tensor> params)
      : Optimizer({torch::optim::OptimizerParamGroup(std::move(params))},
                  std::make_unique<PlainOptions>(0.1)) {}
  at::Tensor step(LossClosure /*closure*/) override { return {}; }
};

TEST(ScheduleMomentum, OtherOptimizersRegisterTheirOptions) {
  PlainOptimizer optimizer({torch::zeros({3}, torch::requires_grad())});
  expect_error([&] { OneCycleLR(optimizer, OneCycleLROptions(1.0).total_steps(20)); },
               "register_momentum_option");
  register_momentum_option<PlainOptions>("PlainOptions");
  OneCycleLR one_cycle(optimizer, OneCycleLROptions(1.0).total_steps(20));
  auto& options = static_cast<PlainOptions&>(optimizer.param_groups()[0].options());
  EXPECT_DOUBLE_EQ(options.momentum(), 0.95);
  for (int i = 0; i < 5; ++i) one_cycle.step();
  EXPECT_LT(options.momentum(), 0.95);
  EXPECT_EQ(options.momentum(), one_cycle.get_last_momentum()[0]);
  EXPECT_NE(momentum_accessor_names().find("PlainOptions"), std::string::npos);
}

TEST(ScheduleMomentum, AdamCyclesBeta1AndKeepsBeta2) {
  auto adam = tlkit::test::make_reference_optimizer("adam");
  OneCycleLR one_cycle(*adam, OneCycleLROptions(0.01).total_steps(10));
  one_cycle.step();
  const auto& options = static_cast<torch::optim::AdamOptions&>(adam->param_groups()[1].options());
  EXPECT_LT(std::get<0>(options.betas()), 0.95);
  EXPECT_EQ(std::get<1>(options.betas()), 0.999);
}

}  // namespace
