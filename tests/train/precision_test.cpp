// Mixed precision: the loss scaler's logic with injected infs, the trainer with loss scaling,
// autocast and channels-last wrappers, and the bf16 convolution guard. Everything runs on the CPU.
#include <tlkit/train/precision.h>

#include <cmath>
#include <iostream>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/trainer.h>

#include "support/test_support.h"
#include "train/train_fixtures.h"

using namespace tlkit::train;

namespace {

// Parameters whose gradients the test sets by hand.
std::vector<torch::Tensor> params_with_grads(const std::vector<std::vector<float>>& grads) {
  std::vector<torch::Tensor> params;
  for (const auto& g : grads) {
    auto p = torch::zeros({static_cast<std::int64_t>(g.size())}).requires_grad_();
    p.mutable_grad() = torch::tensor(g);
    params.push_back(p);
  }
  return params;
}

TrainerOptions options(std::int64_t epochs) {
  TrainerOptions o;
  o.epochs = epochs;
  o.num_classes = 3;
  o.progress = false;
  return o;
}

// Trains the tiny MLP for `epochs` (plain SGD, no shuffling) and returns its final weights.
NamedTensors train_tiny(TrainerOptions o) {
  auto network = tlkit::test::tiny_network(11);
  network->set_dropout(false);
  auto [x, y] = tlkit::test::blobs(20, 3);
  TensorBatchSource source(x, y, 12, false);
  torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.05));
  Trainer trainer(*network, optimizer, o);
  trainer.add_callback(std::make_shared<NonFiniteGuard>());  // the default policy: stop
  trainer.fit(source);
  return clone_state(*network);
}

}  // namespace

TEST(LossScaler, ScalesAndUnscalesExactlyAndFindsNothingInFiniteGradients) {
  LossScaler scaler({1024.0, 2.0, 0.5, 3});
  const auto loss = torch::tensor(0.75f);
  EXPECT_EQ(scaler.scale(loss).item<float>(), 768.0f);
  auto params = params_with_grads({{1024.0f, -2048.0f}, {512.0f}});
  EXPECT_FALSE(scaler.unscale(params));
  EXPECT_EQ(params[0].grad()[0].item<float>(), 1.0f);
  EXPECT_EQ(params[0].grad()[1].item<float>(), -2.0f);
  EXPECT_EQ(params[1].grad()[0].item<float>(), 0.5f);
}

TEST(LossScaler, InfOrNanInAnyGradientIsFoundAndBacksTheScaleOff) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const float bad : {inf, -inf, nan}) {
    LossScaler scaler({1024.0, 2.0, 0.5, 3});
    auto params = params_with_grads({{1.0f, 2.0f}, {3.0f, bad}});
    EXPECT_TRUE(scaler.unscale(params)) << bad;
    scaler.update(true);
    EXPECT_EQ(scaler.scale_value(), 512.0);
    EXPECT_EQ(scaler.skipped_steps(), 1);
    EXPECT_EQ(scaler.growth_tracker(), 0);
  }
  // A parameter without a gradient (frozen, unused) is not a finding.
  LossScaler scaler;
  auto params = params_with_grads({{1.0f}});
  params.push_back(torch::zeros({2}).requires_grad_());
  EXPECT_FALSE(scaler.unscale(params));
}

TEST(LossScaler, GrowsAfterTheIntervalOfFiniteStepsAndAnOverflowRestartsTheCount) {
  LossScaler scaler({8.0, 2.0, 0.25, 3});
  scaler.update(false);
  scaler.update(false);
  EXPECT_EQ(scaler.scale_value(), 8.0);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  scaler.update(true);  // the count starts again
  EXPECT_EQ(scaler.scale_value(), 2.0);
  for (int i = 0; i < 2; ++i) scaler.update(false);
  EXPECT_EQ(scaler.scale_value(), 2.0);
  scaler.update(false);
  EXPECT_EQ(scaler.scale_value(), 4.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // Never grown past float32's range.
  LossScaler big({std::ldexp(1.0, 127), 2.0, 0.5, 1});
  big.update(false);
  EXPECT_EQ(big.scale_value(), std::ldexp(1.0, 127));
}

TEST(LossScaler, RefusesBadOptions) {
  tlkit::test::expect_error([] { LossScaler({0.0, 2.0, 0.5, 10}); }, "positive");
  tlkit::test::expect_error([] { LossScaler({8.0, 1.0, 0.5, 10}); }, "growth factor");
  tlkit::test::expect_error([] { LossScaler({8.0, 2.0, 1.5, 10}); }, "backoff");
  tlkit::test::expect_error([] { LossScaler({8.0, 2.0, 0.5, 0}); }, "interval");
}

TEST(LossScaling, PowerOfTwoScalesTrainExactlyAsWithoutScaling) {
  const auto plain = train_tiny(options(3));
  auto scaled_options = options(3);
  scaled_options.scale_loss = true;
  scaled_options.loss_scaler = {1024.0, 2.0, 0.5, 2};  // grows to 2^14 and beyond on the way
  const auto scaled = train_tiny(scaled_options);
  ASSERT_EQ(plain.size(), scaled.size());
  for (size_t i = 0; i < plain.size(); ++i)
    EXPECT_TRUE(torch::equal(plain[i].second, scaled[i].second)) << plain[i].first;
}

TEST(LossScaling, OverflowedStepsAreSkippedNotFatalAndTheScaleRecovers) {
  auto network = tlkit::test::tiny_network(11);
  network->set_dropout(false);
  auto [x, y] = tlkit::test::blobs(20, 3);
  TensorBatchSource source(x, y, 12, false);  // 5 batches per epoch
  torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.05));
  auto o = options(2);
  o.scale_loss = true;
  // A loss scaled by 2^180 overflows float32 (every gradient inf), by 2^140 too, by 2^100 not.
  o.loss_scaler = {std::ldexp(1.0, 180), 2.0, std::ldexp(1.0, -40), 1000};
  Trainer trainer(*network, optimizer, o);
  trainer.add_callback(std::make_shared<NonFiniteGuard>());  // stop on NaN/Inf: not for these
  const auto start = clone_state(*network);
  trainer.fit(source);
  ASSERT_NE(trainer.loss_scaler(), nullptr);
  EXPECT_EQ(trainer.loss_scaler()->skipped_steps(), 2);
  EXPECT_EQ(trainer.loss_scaler()->scale_value(), std::ldexp(1.0, 100));
  EXPECT_EQ(trainer.loss_scaler()->growth_tracker(), 8);  // 10 steps, 2 skipped
  bool moved = false;
  for (size_t i = 0; i < start.size(); ++i) {
    const auto& now = network->named_state()[i].second;
    EXPECT_TRUE(now.isfinite().all().item<bool>());
    moved = moved || !torch::equal(now, start[i].second);
  }
  EXPECT_TRUE(moved);

  // The scaler's state is part of the checkpoint: a resume continues with the same scale.
  const tlkit::test::TempDir dir;
  trainer.save_checkpoint(dir / "last.pt");
  auto other = tlkit::test::tiny_network(12);
  torch::optim::SGD other_optimizer(other->parameters(), torch::optim::SGDOptions(0.05));
  auto more = o;
  more.epochs = 3;
  Trainer resumed(*other, other_optimizer, more);
  resumed.resume(dir / "last.pt");
  EXPECT_EQ(resumed.loss_scaler()->scale_value(), std::ldexp(1.0, 100));
  EXPECT_EQ(resumed.loss_scaler()->growth_tracker(), 8);
  EXPECT_EQ(resumed.loss_scaler()->skipped_steps(), 2);
}

TEST(LossScaling, ANonFiniteLossStillStopsTheRun) {
  auto network = tlkit::test::tiny_network(11);
  auto [x, y] = tlkit::test::blobs(20, 3);
  x[3][0] = std::numeric_limits<float>::quiet_NaN();  // a NaN input: the loss itself is NaN
  TensorBatchSource source(x, y, 12, false);
  torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.05));
  auto o = options(1);
  o.scale_loss = true;
  Trainer trainer(*network, optimizer, o);
  trainer.add_callback(std::make_shared<NonFiniteGuard>());
  tlkit::test::expect_error([&] { trainer.fit(source); }, "training loss became");
}

TEST(Precision, NamesAndDevices) {
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_EQ(parse_precision("float16"), Precision::kFp16);
  EXPECT_EQ(precision_name(parse_precision("tf32")), "tf32");
  tlkit::test::expect_error([] { parse_precision("fp8"); }, "unknown precision 'fp8'");
  const c10::Device cpu(c10::kCPU);
  check_precision(Precision::kFp32, cpu);
  check_precision(Precision::kBf16, cpu);
  tlkit::test::expect_error([&] { check_precision(Precision::kFp16, cpu); }, "needs a CUDA");
  tlkit::test::expect_error([&] { check_precision(Precision::kTf32, cpu); }, "tf32");
}

TEST(Precision, Bf16AutocastOnTheCpuRunsInBfloat16AndReturnsFloatLogits) {
  torch::manual_seed(3);
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 16, 3).padding(1));
  auto head = torch::nn::Linear(16 * 8 * 8, 5);
  auto module =
      std::make_shared<torch::nn::Sequential>(conv, torch::nn::ReLU(), torch::nn::Flatten(), head);
  ModuleNetwork inner(module->ptr(),
                      [module](const torch::Tensor& x) { return (*module)->forward(x); });
  const auto x = torch::randn({4, 3, 8, 8});
  const auto reference = inner.forward(x);
  PrecisionNetwork bf16(inner, Precision::kBf16, false, c10::Device(c10::kCPU));
  const auto low = bf16.forward(x);
  EXPECT_EQ(low.scalar_type(), at::kFloat);
  EXPECT_FALSE(torch::equal(low, reference));  // it did run in bfloat16
  EXPECT_LT((low - reference).abs().max().item<double>(),
            0.05 * reference.abs().max().item<double>());
  // Autocast is off again outside the forward.
  EXPECT_TRUE(torch::equal(inner.forward(x), reference));
  // Gradients reach the float32 weights.
  bf16.forward(x).sum().backward();
  EXPECT_EQ(conv->weight.grad().scalar_type(), at::kFloat);
  EXPECT_TRUE(conv->weight.grad().abs().sum().item<double>() > 0);
}

TEST(Precision, ChannelsLastChangesTheLayoutNotTheResult) {
  torch::manual_seed(4);
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1));
  ModuleNetwork inner(conv.ptr(),
                      [conv](const torch::Tensor& x) mutable { return conv->forward(x); });
  const auto x = torch::randn({2, 3, 6, 6});
  const auto reference = inner.forward(x);
  set_channels_last(inner, true);
  EXPECT_TRUE(conv->weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(conv->weight.is_contiguous());
  PrecisionNetwork network(inner, Precision::kFp32, true, c10::Device(c10::kCPU));
  EXPECT_TRUE(torch::allclose(network.forward(x), reference, 1e-5, 1e-6));
  set_channels_last(inner, false);
  EXPECT_TRUE(conv->weight.is_contiguous());
  EXPECT_TRUE(torch::allclose(inner.forward(x), reference, 1e-6, 1e-7));
}

TEST(Precision, TheBf16GuardNamesConvolutionsThatTheProbeFindsWrong) {
  auto a = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3));
  auto b = torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 32, 3));
  auto c = torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 8, 3));
  auto module = std::make_shared<torch::nn::Sequential>(a, b, c);
  ModuleNetwork network(module->ptr(),
                        [module](const torch::Tensor& x) { return (*module)->forward(x); });
  std::vector<std::int64_t> probed;
  const auto broken = [&probed](std::int64_t out_channels) {
    probed.push_back(out_channels);
    return out_channels % 16 == 0 ? 0.004 : 0.4;
  };
  const auto unsafe = bf16_unsafe_convolutions(network, broken);
  ASSERT_EQ(unsafe.size(), 2u);
  EXPECT_EQ(unsafe[0], "0 (8 output channels: 40% error)");
  EXPECT_EQ(unsafe[1], "2 (8 output channels: 40% error)");
  EXPECT_EQ(probed, std::vector<std::int64_t>{8});  // once per count, never for multiples of 16
  EXPECT_TRUE(bf16_unsafe_convolutions(network, [](std::int64_t) { return 0.01; }).empty());
  // The real probe: a multiple of 16 is right to bfloat16's precision on any CPU.
  EXPECT_LT(cpu_bf16_convolution_error(16), 0.1);
  EXPECT_LT(cpu_bf16_convolution_error(64), 0.1);
  std::cout << "bf16 convolution error on this CPU: 4 channels "
            << cpu_bf16_convolution_error(4) << ", 8: " << cpu_bf16_convolution_error(8)
            << ", 16: " << cpu_bf16_convolution_error(16) << "\n";
}
