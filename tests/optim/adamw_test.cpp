// tlkit::optim::AdamW against Python torch.optim.AdamW.

#include "optim/optim_test_util.h"

namespace tlkit::test::optim {
namespace {

using tlkit::optim::AdamW;
using tlkit::optim::AdamWOptions;
using tlkit::optim::KernelMode;

TEST(OptimAdamW, MatchesTorchReferenceWithFusedKernel) {
  expect_matches_reference<AdamW>("adamw/");
}

TEST(OptimAdamW, MatchesTorchReferenceWithTensorOps) {
  expect_matches_reference<AdamW>("adamw/", {KernelMode::kTensorOps, false});
}

// The multi-tensor path (at::_foreach_*, taken for CUDA parameters) on the CPU.
// LibTorch 2.x's own fused kernel (at::_fused_adamw_) against the same references.
// tlkit's own fused CPU kernel (what kAuto takes on LibTorch 1.13).
TEST(OptimAdamW, MatchesTorchReferenceWithOwnKernel) {
  expect_matches_reference<AdamW>("adamw/", {KernelMode::kOwn, false});
}

TEST(OptimAdamW, MatchesTorchReferenceWithTorchFusedKernels) {
  if (!tlkit::optim::torch_fused_kernels_available())
    GTEST_SKIP() << "this LibTorch has no fused optimizer kernels (LibTorch 2.x has)";
  expect_matches_reference<AdamW>("adamw/", {KernelMode::kTorchFused, false});
}

TEST(OptimAdamW, MatchesTorchReferenceWithForeach) {
  expect_matches_reference<AdamW>("adamw/", {KernelMode::kForeach, false});
}

TEST(OptimAdamW, StridedParamsMatchTorchReference) {
  expect_matches_reference<AdamW>("adamw/", {KernelMode::kAuto, true});
}

TEST(OptimAdamW, SaveLoadResumesExactly) { expect_save_load_resumes_exactly("adamw/"); }

TEST(OptimAdamW, RejectsForeignArchives) {
  expect_rejects_foreign_archives(
      [](Groups g) { return std::make_unique<AdamW>(std::move(g)); },
      [](Groups g) { return std::make_unique<torch::optim::AdamW>(std::move(g)); },
      [](Groups g) { return std::make_unique<tlkit::optim::Adam>(std::move(g)); });
}

TEST(OptimAdamW, DefaultsAreTorchDefaults) {
  const AdamWOptions options;
  EXPECT_DOUBLE_EQ(options.lr(), 1e-3);
  EXPECT_DOUBLE_EQ(options.weight_decay(), 1e-2);
  EXPECT_DOUBLE_EQ(options.eps(), 1e-8);
  EXPECT_DOUBLE_EQ(std::get<0>(options.betas()), 0.9);
  EXPECT_DOUBLE_EQ(std::get<1>(options.betas()), 0.999);
  EXPECT_FALSE(options.amsgrad());
}

// With a zero gradient the moments stay zero, so a step only applies the decay w·(1 − lr·wd).
TEST(OptimAdamW, WeightDecayIsDecoupledFromTheGradient) {
  auto w = torch::full({3}, 2.0, torch::kFloat64).requires_grad_(true);
  AdamW adamw({w}, AdamWOptions(0.1).weight_decay(0.5));
  w.mutable_grad() = torch::zeros({3}, torch::kFloat64);
  adamw.step();
  EXPECT_TRUE(
      torch::allclose(w.detach(), torch::full({3}, 2.0 * (1 - 0.1 * 0.5), torch::kFloat64)));
}

TEST(OptimAdamW, RejectsBadOptions) {
  auto w = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  auto build = [&](AdamWOptions options) { return [=] { AdamW adamw({w}, options); }; };
  expect_option_error(build(AdamWOptions(-1)), "lr = -1");
  expect_option_error(build(AdamWOptions().betas({0.9, -0.5})), "betas[1] = -0.5");
  expect_option_error(build(AdamWOptions().eps(-1)), "eps = -1");
  expect_option_error(build(AdamWOptions().weight_decay(-0.01)), "weight_decay = -0.01");
  expect_group_checks<AdamW, AdamWOptions, torch::optim::AdamWOptions>(
      AdamWOptions(), AdamWOptions().weight_decay(-1), "weight_decay = -1");
}

TEST(OptimAdamW, SparseGradientIsAnErrorAndMissingGradientsAreSkipped) {
  expect_sparse_error_and_skips_missing_grads(
      [](std::vector<at::Tensor> params) { return std::make_unique<AdamW>(std::move(params)); });
}

TEST(OptimAdamW, ConvergesOnRegression) {
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<AdamW>(std::move(p), AdamWOptions(0.05));
      },
      400, 0.02);
}

}  // namespace
}  // namespace tlkit::test::optim
