// Schedules drive tlkit's own optimizers exactly as LibTorch's: the torch reference sequences,
// including OneCycleLR's momentum / beta1 cycling, found without registration (the generic
// serialize() path) and after registering the options classes (the fast path).

#include <chrono>
#include <iostream>

#include <gtest/gtest.h>

#include <tlkit/core/error.h>
#include <tlkit/optim.h>

#include "schedule/schedule_reference.h"

namespace {

using namespace tlkit::schedule;

std::unique_ptr<torch::optim::Optimizer> tlkit_optimizer(const std::string& kind) {
  const std::vector<double> lrs = {0.1, 0.01};
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (std::size_t i = 0; i < lrs.size(); ++i) {
    std::vector<at::Tensor> params = {torch::zeros({2}, torch::requires_grad())};
    if (kind == "adam") {
      groups.emplace_back(params, std::make_unique<tlkit::optim::AdamOptions>(lrs[i]));
    } else {
      groups.emplace_back(params, std::make_unique<tlkit::optim::SGDOptions>(
                                      tlkit::optim::SGDOptions(lrs[i]).momentum(0.9)));
    }
  }
  if (kind == "adam")
    return std::make_unique<tlkit::optim::Adam>(groups, tlkit::optim::AdamOptions(lrs[0]));
  return std::make_unique<tlkit::optim::SGD>(groups,
                                             tlkit::optim::SGDOptions(lrs[0]).momentum(0.9));
}

// Runs every reference case on a tlkit optimizer; returns the seconds spent.
double run_all_cases() {
  const auto start = std::chrono::steady_clock::now();
  for (const auto& c : tlkit::test::schedule_reference_cases()) {
    SCOPED_TRACE(c.name);
    auto optimizer = tlkit_optimizer(c.optimizer);
    auto scheduler = tlkit::test::build_reference_schedule(c.name, *optimizer);
    for (std::size_t step = 0; step < c.lr.size(); ++step) {
      if (step > 0) tlkit::test::step_reference_case(c, *scheduler, step);
      for (std::size_t g = 0; g < 2; ++g) {
        EXPECT_NEAR(optimizer->param_groups()[g].options().get_lr(), c.lr[step][g], 1e-12)
            << "step " << step;
        if (!c.momentum.empty()) {
          EXPECT_NEAR(tlkit::test::group_momenta(*optimizer)[g], c.momentum[step][g], 1e-12)
              << "step " << step;
        }
      }
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(ScheduleWithTlkitOptim, MatchesTorchWithAndWithoutRegistration) {
  auto probe = tlkit_optimizer("adam");
  ASSERT_EQ(get_momentum(probe->param_groups()[0].options()).value_or(-1),
            0.9);  // generic path: beta1 of betas
  const double generic = run_all_cases();
  register_momentum_option<tlkit::optim::SGDOptions>("tlkit::optim::SGDOptions");
  register_beta1_option<tlkit::optim::AdamOptions>("tlkit::optim::AdamOptions");
  const double registered = run_all_cases();
  std::cout << "[ schedule ] all reference cases on tlkit::optim: " << generic * 1e3
            << " ms generic path, " << registered * 1e3 << " ms with registered accessors\n";
}

TEST(ScheduleWithTlkitOptim, AdagradHasNoMomentumToCycle) {
  std::vector<at::Tensor> params = {torch::zeros({2}, torch::requires_grad())};
  tlkit::optim::AdaGrad adagrad(params, tlkit::optim::AdaGradOptions(0.1));
  EXPECT_FALSE(get_momentum(adagrad.param_groups()[0].options()).has_value());
  EXPECT_THROW(OneCycleLR(adagrad, OneCycleLROptions(0.1).total_steps(10)), tlkit::Error);
  // The spec turns momentum cycling off by itself when the optimizer has none.
  ScheduleContext context;
  context.total_steps = 10;
  EXPECT_EQ(make_scheduler("onecycle", adagrad, context)->name(), "OneCycleLR");
}

}  // namespace
