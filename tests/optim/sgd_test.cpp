// tlkit::optim::SGD against Python torch.optim.SGD, plus the course's momentum forms.

#include "optim/optim_test_util.h"

namespace tlkit::test::optim {
namespace {

using tlkit::optim::KernelMode;
using tlkit::optim::SGD;
using tlkit::optim::SGDOptions;

TEST(OptimSGD, MatchesTorchReferenceWithFusedKernel) { expect_matches_reference<SGD>("sgd/"); }

TEST(OptimSGD, MatchesTorchReferenceWithTensorOps) {
  expect_matches_reference<SGD>("sgd/", {KernelMode::kTensorOps, false});
}

// LibTorch 2.x's own fused kernel (at::_fused_sgd_) against the same references.
// tlkit's own fused CPU kernel (what kAuto takes on LibTorch 1.13).
TEST(OptimSGD, MatchesTorchReferenceWithOwnKernel) {
  expect_matches_reference<SGD>("sgd/", {KernelMode::kOwn, false});
}

TEST(OptimSGD, MatchesTorchReferenceWithTorchFusedKernels) {
  if (!tlkit::optim::torch_fused_kernels_available())
    GTEST_SKIP() << "this LibTorch has no fused optimizer kernels (LibTorch 2.x has)";
  expect_matches_reference<SGD>("sgd/", {KernelMode::kTorchFused, false});
}

TEST(OptimSGD, StridedParamsMatchTorchReference) {
  expect_matches_reference<SGD>("sgd/", {KernelMode::kAuto, true});
}

TEST(OptimSGD, SaveLoadResumesExactly) { expect_save_load_resumes_exactly("sgd/"); }

TEST(OptimSGD, RejectsForeignArchives) {
  expect_rejects_foreign_archives(
      [](Groups g) { return std::make_unique<SGD>(std::move(g), SGDOptions(0.1).momentum(0.9)); },
      [](Groups g) {
        return std::make_unique<torch::optim::SGD>(std::move(g),
                                                   torch::optim::SGDOptions(0.1).momentum(0.9));
      },
      [](Groups g) { return std::make_unique<tlkit::optim::Adam>(std::move(g)); });
}

TEST(OptimSGD, RejectsBadOptions) {
  auto w = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  auto build = [&](SGDOptions options) { return [=] { SGD sgd({w}, options); }; };
  expect_option_error(build(SGDOptions(-0.1)), "lr = -0.1");
  expect_option_error(build(SGDOptions(std::nan(""))), "lr = nan");
  expect_option_error(build(SGDOptions(0.1).momentum(-0.5)), "momentum = -0.5");
  expect_option_error(build(SGDOptions(0.1).dampening(1.5)), "dampening = 1.5");
  expect_option_error(build(SGDOptions(0.1).weight_decay(-1)), "weight_decay = -1");
  expect_option_error(build(SGDOptions(0.1).nesterov(true)), "nesterov=true needs momentum > 0");
  expect_option_error(build(SGDOptions(0.1).nesterov(true).momentum(0.9).dampening(0.1)),
                      "dampening = 0");
  expect_group_checks<SGD, SGDOptions, torch::optim::SGDOptions>(
      SGDOptions(0.1), SGDOptions(0.1).weight_decay(-2), "weight_decay = -2");
}

TEST(OptimSGD, SparseGradientIsAnErrorAndMissingGradientsAreSkipped) {
  expect_sparse_error_and_skips_missing_grads([](std::vector<at::Tensor> params) {
    return std::make_unique<SGD>(std::move(params), SGDOptions(0.1).momentum(0.9));
  });
}

TEST(OptimSGD, ConvergesOnRegression) {
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<SGD>(std::move(p), SGDOptions(0.2));
      },
      300, 0.02);
  expect_converges(
      [](std::vector<at::Tensor> p) {
        return std::make_unique<SGD>(std::move(p), SGDOptions(0.05).momentum(0.9).nesterov(true));
      },
      300, 0.02);
}

// f(w) = ½ wᵀ A w − bᵀ w on a fixed 3-d quadratic; its gradient is A w − b.
at::Tensor quadratic_grad(const at::Tensor& w) {
  const auto A =
      torch::tensor({3.0, 0.5, 0.2, 0.5, 2.0, 0.1, 0.2, 0.1, 1.0}, torch::kFloat64).view({3, 3});
  const auto b = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64);
  return A.matmul(w) - b;
}

// The course's heavy-ball form: v ← ρv + g, w ← w − ηv (Sutskever et al. 2013).
TEST(OptimSGD, MomentumIsTheCourseHeavyBallForm) {
  const double lr = 0.1, rho = 0.9;
  auto w = torch::tensor({1.0, 1.0, 1.0}, torch::kFloat64).requires_grad_(true);
  SGD sgd({w}, SGDOptions(lr).momentum(rho));
  at::Tensor course_w = w.detach().clone(), v = torch::zeros({3}, torch::kFloat64);
  for (int t = 0; t < 50; ++t) {
    w.mutable_grad() = quadratic_grad(w.detach());
    sgd.step();
    v = rho * v + quadratic_grad(course_w);
    course_w = course_w - lr * v;
    ASSERT_TRUE(torch::allclose(w.detach(), course_w, 1e-12, 1e-12)) << "step " << t;
  }
}

// The course's look-ahead Nesterov form, v ← ρv − η∇f(w + ρv), w ← w + v, visits w + ρv = the
// points torch's re-parameterised form stores.
TEST(OptimSGD, NesterovIsTheCourseLookAheadForm) {
  const double lr = 0.1, rho = 0.9;
  auto w = torch::tensor({1.0, 1.0, 1.0}, torch::kFloat64).requires_grad_(true);
  SGD sgd({w}, SGDOptions(lr).momentum(rho).nesterov(true));
  at::Tensor course_w = w.detach().clone(), v = torch::zeros({3}, torch::kFloat64);
  for (int t = 0; t < 50; ++t) {
    w.mutable_grad() = quadratic_grad(w.detach());
    sgd.step();
    v = rho * v - lr * quadratic_grad(course_w + rho * v);
    course_w = course_w + v;
    ASSERT_TRUE(torch::allclose(w.detach(), course_w + rho * v, 1e-10, 1e-12)) << "step " << t;
  }
}

}  // namespace
}  // namespace tlkit::test::optim
