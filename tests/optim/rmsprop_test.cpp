// tlkit::optim::RMSProp against Python torch.optim.RMSprop.

#include "optim/optim_test_util.h"

namespace tlkit::test::optim {
namespace {

using tlkit::optim::KernelMode;
using tlkit::optim::RMSProp;
using tlkit::optim::RMSPropOptions;

TEST(OptimRMSProp, MatchesTorchReferenceWithFusedKernel) {
  expect_matches_reference<RMSProp>("rmsprop/");
}

TEST(OptimRMSProp, MatchesTorchReferenceWithTensorOps) {
  expect_matches_reference<RMSProp>("rmsprop/", {KernelMode::kTensorOps, false});
}

TEST(OptimRMSProp, StridedParamsMatchTorchReference) {
  expect_matches_reference<RMSProp>("rmsprop/", {KernelMode::kAuto, true});
}

TEST(OptimRMSProp, SaveLoadResumesExactly) { expect_save_load_resumes_exactly("rmsprop/"); }

TEST(OptimRMSProp, RejectsForeignArchives) {
  expect_rejects_foreign_archives(
      [](Groups g) {
        return std::make_unique<RMSProp>(std::move(g), RMSPropOptions().centered(true));
      },
      [](Groups g) { return std::make_unique<torch::optim::RMSprop>(std::move(g)); },
      [](Groups g) { return std::make_unique<tlkit::optim::AdaGrad>(std::move(g)); });
}

TEST(OptimRMSProp, RejectsBadOptions) {
  auto w = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  auto build = [&](RMSPropOptions options) { return [=] { RMSProp rmsprop({w}, options); }; };
  expect_option_error(build(RMSPropOptions(-0.01)), "lr = -0.01");
  expect_option_error(build(RMSPropOptions().alpha(-0.1)), "alpha = -0.1");
  expect_option_error(build(RMSPropOptions().alpha(1.5)), "alpha = 1.5");
  expect_option_error(build(RMSPropOptions().eps(-1)), "eps = -1");
  expect_option_error(build(RMSPropOptions().weight_decay(-1)), "weight_decay = -1");
  expect_option_error(build(RMSPropOptions().momentum(-0.9)), "momentum = -0.9");
  expect_group_checks<RMSProp, RMSPropOptions, torch::optim::RMSpropOptions>(
      RMSPropOptions(), RMSPropOptions().momentum(-1), "momentum = -1");
}

// Turning momentum or centering on after some steps creates the missing state (zeros), as torch.
TEST(OptimRMSProp, OptionsSwitchedOnLaterCreateTheirState) {
  auto w = torch::ones({3}, torch::kFloat64).requires_grad_(true);
  RMSProp rmsprop({w}, RMSPropOptions(0.01));
  w.mutable_grad() = torch::full({3}, 0.5, torch::kFloat64);
  rmsprop.step();
  auto& options = static_cast<RMSPropOptions&>(rmsprop.param_groups()[0].options());
  options.momentum(0.9).centered(true);
  rmsprop.step();
  const auto& state =
      static_cast<const tlkit::optim::RMSPropParamState&>(*rmsprop.state().begin()->second);
  EXPECT_TRUE(state.momentum_buffer().defined());
  EXPECT_TRUE(state.grad_avg().defined());
  EXPECT_EQ(state.step(), 2);
}

TEST(OptimRMSProp, SparseGradientIsAnErrorAndMissingGradientsAreSkipped) {
  expect_sparse_error_and_skips_missing_grads([](std::vector<at::Tensor> params) {
    return std::make_unique<RMSProp>(std::move(params), RMSPropOptions().momentum(0.5));
  });
}

TEST(OptimRMSProp, ConvergesOnRegression) {
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<RMSProp>(std::move(p), RMSPropOptions(0.01));
      },
      400, 0.03);
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<RMSProp>(std::move(p),
                                         RMSPropOptions(0.003).momentum(0.9).centered(true));
      },
      400, 0.03);
}

}  // namespace
}  // namespace tlkit::test::optim
