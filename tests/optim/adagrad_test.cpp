// tlkit::optim::AdaGrad against Python torch.optim.Adagrad.

#include "optim/optim_test_util.h"

namespace tlkit::test::optim {
namespace {

using tlkit::optim::AdaGrad;
using tlkit::optim::AdaGradOptions;
using tlkit::optim::KernelMode;

TEST(OptimAdaGrad, MatchesTorchReferenceWithFusedKernel) {
  expect_matches_reference<AdaGrad>("adagrad/");
}

TEST(OptimAdaGrad, MatchesTorchReferenceWithTensorOps) {
  expect_matches_reference<AdaGrad>("adagrad/", {KernelMode::kTensorOps, false});
}

TEST(OptimAdaGrad, StridedParamsMatchTorchReference) {
  expect_matches_reference<AdaGrad>("adagrad/", {KernelMode::kAuto, true});
}

TEST(OptimAdaGrad, SaveLoadResumesExactly) { expect_save_load_resumes_exactly("adagrad/"); }

TEST(OptimAdaGrad, RejectsForeignArchives) {
  expect_rejects_foreign_archives(
      [](Groups g) { return std::make_unique<AdaGrad>(std::move(g)); },
      [](Groups g) { return std::make_unique<torch::optim::Adagrad>(std::move(g)); },
      [](Groups g) { return std::make_unique<tlkit::optim::RMSProp>(std::move(g)); });
}

TEST(OptimAdaGrad, RejectsBadOptions) {
  auto w = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  auto build = [&](AdaGradOptions options) { return [=] { AdaGrad adagrad({w}, options); }; };
  expect_option_error(build(AdaGradOptions(-1)), "lr = -1");
  expect_option_error(build(AdaGradOptions().lr_decay(-0.1)), "lr_decay = -0.1");
  expect_option_error(build(AdaGradOptions().weight_decay(-0.1)), "weight_decay = -0.1");
  expect_option_error(build(AdaGradOptions().initial_accumulator_value(-1)),
                      "initial_accumulator_value = -1");
  expect_option_error(build(AdaGradOptions().eps(-1e-10)), "eps = -1e-10");
  expect_group_checks<AdaGrad, AdaGradOptions, torch::optim::AdagradOptions>(
      AdaGradOptions(), AdaGradOptions().eps(-1), "eps = -1");
}

TEST(OptimAdaGrad, StepCounterSurvivesSaveLoad) {
  auto w = torch::ones({3}, torch::kFloat64).requires_grad_(true);
  AdaGrad first({w}, AdaGradOptions(0.1).lr_decay(0.5));
  for (int t = 0; t < 4; ++t) {
    w.mutable_grad() = torch::full({3}, 0.5, torch::kFloat64);
    first.step();
  }
  TempDir dir;
  torch::save(first, (dir / "adagrad.pt").string());
  auto copy = w.detach().clone().requires_grad_(true);
  AdaGrad second({copy}, AdaGradOptions(0.1).lr_decay(0.5));
  torch::load(second, (dir / "adagrad.pt").string());
  const auto& state =
      static_cast<const tlkit::optim::AdaGradParamState&>(*second.state().begin()->second);
  EXPECT_EQ(state.step(), 4);
}

TEST(OptimAdaGrad, SparseGradientIsAnErrorAndMissingGradientsAreSkipped) {
  expect_sparse_error_and_skips_missing_grads(
      [](std::vector<at::Tensor> params) { return std::make_unique<AdaGrad>(std::move(params)); });
}

TEST(OptimAdaGrad, ConvergesOnRegression) {
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<AdaGrad>(std::move(p), AdaGradOptions(0.5));
      },
      300, 0.02);
}

}  // namespace
}  // namespace tlkit::test::optim
