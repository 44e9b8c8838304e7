// The fused CPU kernels against the tensor-op path on tensors larger than one parallel chunk.

#include "optim/optim_test_util.h"

namespace tlkit::test::optim {
namespace {

using tlkit::optim::KernelMode;
using tlkit::optim::ScopedKernelMode;

// Runs `steps` steps with fixed random gradients on a fresh parameter and returns it.
at::Tensor run(const std::string& spec, at::ScalarType dtype, KernelMode mode, int steps) {
  ScopedKernelMode scoped(mode);
  torch::manual_seed(7);
  const std::int64_t n = 3 * 32768 + 5;  // several chunks and an odd SIMD tail
  auto w = torch::randn({n}, dtype).requires_grad_(true);
  const auto optimizer =
      tlkit::optim::make_optimizer(tlkit::optim::parse_optimizer_settings(spec),
                                   {torch::optim::OptimizerParamGroup(std::vector<at::Tensor>{w})});
  for (int t = 0; t < steps; ++t) {
    w.mutable_grad() = torch::randn({n}, dtype);
    optimizer->step();
  }
  return w.detach();
}

TEST(OptimKernel, FusedMatchesTensorOpsAcrossChunksAndThreads) {
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  for (const std::string spec :
       {"sgd:lr=0.1", "sgd:lr=0.1,momentum=0.9,dampening=0.1,weight_decay=0.01",
        "nesterov:lr=0.1,weight_decay=0.01", "adagrad:lr=0.1,lr_decay=0.01,weight_decay=0.01",
        "rmsprop:lr=0.01,weight_decay=0.01", "rmsprop:lr=0.01,momentum=0.9,centered=true",
        "rmsprop:lr=0.01,centered=true", "rmsprop:lr=0.01,momentum=0.5",
        "adam:lr=0.01,weight_decay=0.01", "adam:lr=0.01,amsgrad=true", "adamw:lr=0.01,amsgrad=true",
        "adamw:lr=0.01,weight_decay=0.1"}) {
    for (const auto dtype : {at::kDouble, at::kFloat}) {
      const auto fused_before = tlkit::optim::fused_update_count();
      const at::Tensor fused = run(spec, dtype, KernelMode::kOwn, 5);
      EXPECT_EQ(tlkit::optim::fused_update_count(), fused_before + 5) << spec;
      const at::Tensor reference = run(spec, dtype, KernelMode::kTensorOps, 5);
      // Only rounding may differ (ATen fuses some multiply-adds): a few units in the last place.
      const double tol = dtype == at::kDouble ? 1e-13 : 1e-5;
      EXPECT_LE(trajectory_error(fused.unsqueeze(0), reference.unsqueeze(0)), tol)
          << spec << " " << dtype_name(dtype);
    }
  }
  at::set_num_threads(threads);
}

// torch.maximum propagates NaN; the fused AMSGrad maximum must too (SIMD lanes and scalar tail).
TEST(OptimKernel, AmsgradMaximumPropagatesNaNLikeTorch) {
  for (const auto mode : {KernelMode::kAuto, KernelMode::kOwn, KernelMode::kTensorOps}) {
    ScopedKernelMode scoped(mode);
    auto w = torch::ones({7}, torch::kFloat32).requires_grad_(true);
    tlkit::optim::Adam adam({w}, tlkit::optim::AdamOptions(0.1).amsgrad(true));
    w.mutable_grad() = torch::tensor({1.0f, NAN, 2.0f, 3.0f, 4.0f, 5.0f, NAN});
    adam.step();
    w.mutable_grad() = torch::ones({7}, torch::kFloat32);
    adam.step();
    const auto& state =
        static_cast<const tlkit::optim::AdamParamState&>(*adam.state().begin()->second);
    const auto nan = torch::isnan(state.max_exp_avg_sq());
    EXPECT_TRUE(torch::equal(nan, torch::tensor({false, true, false, false, false, false, true})))
        << "mode " << static_cast<int>(mode) << ": " << state.max_exp_avg_sq();
  }
}

TEST(OptimKernel, HalfPrecisionTakesTheTensorOpPath) {
  auto w = torch::ones({16}, torch::kFloat64).to(torch::kBFloat16).requires_grad_(true);
  tlkit::optim::Adam adam({w}, tlkit::optim::AdamOptions(0.1));
  w.mutable_grad() = torch::ones({16}, torch::kBFloat16);
  const auto fused_before = tlkit::optim::fused_update_count();
  adam.step();
  EXPECT_EQ(tlkit::optim::fused_update_count(), fused_before);
  EXPECT_LT(w[0].item<double>(), 1.0);
}

}  // namespace
}  // namespace tlkit::test::optim
