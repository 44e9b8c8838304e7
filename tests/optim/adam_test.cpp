// tlkit::optim::Adam against Python torch.optim.Adam, and state save/load details.

#include "optim/optim_test_util.h"

namespace tlkit::test::optim {
namespace {

using tlkit::optim::Adam;
using tlkit::optim::AdamOptions;
using tlkit::optim::AdamParamState;
using tlkit::optim::KernelMode;

TEST(OptimAdam, MatchesTorchReferenceWithFusedKernel) { expect_matches_reference<Adam>("adam/"); }

TEST(OptimAdam, MatchesTorchReferenceWithTensorOps) {
  expect_matches_reference<Adam>("adam/", {KernelMode::kTensorOps, false});
}

// The multi-tensor path (at::_foreach_*, taken for CUDA parameters) on the CPU.
// LibTorch 2.x's own fused kernel (at::_fused_adam_) against the same references.
// tlkit's own fused CPU kernel (what kAuto takes on LibTorch 1.13).
TEST(OptimAdam, MatchesTorchReferenceWithOwnKernel) {
  expect_matches_reference<Adam>("adam/", {KernelMode::kOwn, false});
}

TEST(OptimAdam, MatchesTorchReferenceWithTorchFusedKernels) {
  if (!tlkit::optim::torch_fused_kernels_available())
    GTEST_SKIP() << "this LibTorch has no fused optimizer kernels (LibTorch 2.x has)";
  expect_matches_reference<Adam>("adam/", {KernelMode::kTorchFused, false});
}

TEST(OptimAdam, MatchesTorchReferenceWithForeach) {
  expect_matches_reference<Adam>("adam/", {KernelMode::kForeach, false});
}

TEST(OptimAdam, StridedParamsMatchTorchReference) {
  expect_matches_reference<Adam>("adam/", {KernelMode::kAuto, true});
}

TEST(OptimAdam, SaveLoadResumesExactly) { expect_save_load_resumes_exactly("adam/"); }

TEST(OptimAdam, RejectsForeignArchives) {
  expect_rejects_foreign_archives(
      [](Groups g) { return std::make_unique<Adam>(std::move(g), AdamOptions().amsgrad(true)); },
      [](Groups g) { return std::make_unique<torch::optim::Adam>(std::move(g)); },
      [](Groups g) { return std::make_unique<tlkit::optim::AdamW>(std::move(g)); });
}

TEST(OptimAdam, RejectsBadOptions) {
  auto w = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  auto build = [&](AdamOptions options) { return [=] { Adam adam({w}, options); }; };
  expect_option_error(build(AdamOptions(-1e-3)), "lr = -0.001");
  expect_option_error(build(AdamOptions().betas({1.0, 0.999})), "betas[0] = 1");
  expect_option_error(build(AdamOptions().betas({-0.1, 0.999})), "betas[0] = -0.1");
  expect_option_error(build(AdamOptions().betas({0.9, 1.2})), "betas[1] = 1.2");
  expect_option_error(build(AdamOptions().eps(-1e-8)), "eps = -1e-08");
  expect_option_error(build(AdamOptions().weight_decay(-0.01)), "weight_decay = -0.01");
  expect_group_checks<Adam, AdamOptions, torch::optim::AdamOptions>(
      AdamOptions(), AdamOptions().betas({0.9, 1.0}), "betas[1] = 1");
}

// The step counter (bias correction) and the AMSGrad maximum come back from an archive.
TEST(OptimAdam, StepCounterAndStateSurviveSaveLoad) {
  auto w = torch::linspace(-1, 1, 5, torch::kFloat64).requires_grad_(true);
  Adam first({w}, AdamOptions(0.01).amsgrad(true));
  for (int t = 0; t < 7; ++t) {
    w.mutable_grad() = torch::sin(w.detach() * (t + 1));
    first.step();
  }
  TempDir dir;
  torch::save(first, (dir / "adam.pt").string());
  auto copy = w.detach().clone().requires_grad_(true);
  Adam second({copy}, AdamOptions(0.01).amsgrad(true));
  torch::load(second, (dir / "adam.pt").string());
  const auto& a = static_cast<const AdamParamState&>(*first.state().begin()->second);
  const auto& b = static_cast<const AdamParamState&>(*second.state().begin()->second);
  EXPECT_EQ(b.step(), 7);
  EXPECT_TRUE(torch::equal(a.exp_avg(), b.exp_avg()));
  EXPECT_TRUE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
  EXPECT_TRUE(torch::equal(a.max_exp_avg_sq(), b.max_exp_avg_sq()));
}

// Loaded state follows the parameters' dtype (as Python's load_state_dict); other shapes are an
// error.
TEST(OptimAdam, LoadedStateIsCheckedAgainstTheParameters) {
  auto w = torch::ones({4}, torch::kFloat64).requires_grad_(true);
  Adam first({w}, AdamOptions(0.01));
  w.mutable_grad() = torch::full({4}, 0.25, torch::kFloat64);
  first.step();
  TempDir dir;
  torch::save(first, (dir / "adam.pt").string());

  auto single = torch::ones({4}, torch::kFloat32).requires_grad_(true);
  Adam as_float({single}, AdamOptions(0.01));
  torch::load(as_float, (dir / "adam.pt").string());
  const auto& state = static_cast<const AdamParamState&>(*as_float.state().begin()->second);
  EXPECT_EQ(state.exp_avg().scalar_type(), at::kFloat);

  auto other_shape = torch::ones({2, 3}, torch::kFloat64).requires_grad_(true);
  Adam mismatched({other_shape}, AdamOptions(0.01));
  expect_option_error([&] { torch::load(mismatched, (dir / "adam.pt").string()); },
                      "has shape [4]");
}

// A fused update (tlkit's or LibTorch's) bumps the parameter's version like an in-place op, so
// autograd still notices.
TEST(OptimAdam, FusedStepBumpsTheVersionCounter) {
  for (const auto mode : {KernelMode::kOwn, KernelMode::kTorchFused}) {
    if (mode == KernelMode::kTorchFused && !tlkit::optim::torch_fused_kernels_available()) continue;
    tlkit::optim::ScopedKernelMode scoped(mode);
    auto w = torch::ones({8}, torch::kFloat32).requires_grad_(true);
    Adam adam({w}, AdamOptions(0.1));
    w.mutable_grad() = torch::ones({8}, torch::kFloat32);
    const auto fused_before = tlkit::optim::fused_update_count();
    const auto torch_fused_before = tlkit::optim::torch_fused_update_count();
    const auto version = w._version();
    adam.step();
    if (mode == KernelMode::kOwn)
      EXPECT_EQ(tlkit::optim::fused_update_count(), fused_before + 1);
    else
      EXPECT_EQ(tlkit::optim::torch_fused_update_count(), torch_fused_before + 1);
    EXPECT_GT(w._version(), version) << static_cast<int>(mode);
  }
}

TEST(OptimAdam, ClosureLossIsReturned) {
  auto w = torch::full({2}, 3.0, torch::kFloat64).requires_grad_(true);
  Adam adam({w}, AdamOptions(0.1));
  const auto loss = adam.step([&] {
    adam.zero_grad();
    auto l = (w * w).sum();
    l.backward();
    return l;
  });
  EXPECT_DOUBLE_EQ(loss.item<double>(), 18.0);
  EXPECT_LT(w[0].item<double>(), 3.0);
}

TEST(OptimAdam, SparseGradientIsAnErrorAndMissingGradientsAreSkipped) {
  expect_sparse_error_and_skips_missing_grads(
      [](std::vector<at::Tensor> params) { return std::make_unique<Adam>(std::move(params)); });
}

TEST(OptimAdam, ConvergesOnRegression) {
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<Adam>(std::move(p), AdamOptions(0.05));
      },
      400, 0.02);
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<Adam>(std::move(p), AdamOptions(0.05).amsgrad(true));
      },
      400, 0.02);
}

}  // namespace
}  // namespace tlkit::test::optim
