#include <tlkit/train/ema.h>

#include <cmath>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>

namespace {

using tlkit::train::EMABufferMode;
using tlkit::train::EMAOptions;
using tlkit::train::ExponentialMovingAverage;

constexpr std::uint64_t kSeed = 1234;

std::vector<double> values(const at::Tensor& t) {
  const auto flat = t.detach().to(torch::kDouble).contiguous().view(-1);
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

// One SGD step of a least-squares fit, so the weights move differently each step.
void train_step(torch::nn::Linear& model, torch::optim::SGD& sgd, torch::Dtype dtype) {
  const auto x = torch::randn({8, 3}, dtype);
  const auto y = torch::randn({8, 2}, dtype);
  sgd.zero_grad();
  torch::mse_loss(model(x), y).backward();
  sgd.step();
}

// Runs 25 steps and checks every average element against w_avg = b w_avg + (1 - b) w computed here.
void check_recurrence(torch::Dtype dtype, bool warmup, double tolerance) {
  torch::manual_seed(kSeed);
  std::cout << "[ ema ] seed " << kSeed << "\n";
  torch::nn::Linear model(3, 2);
  model->to(dtype);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  const double decay = 0.9;
  ExponentialMovingAverage ema(*model, EMAOptions().decay(decay).warmup(warmup));
  std::vector<std::vector<double>> expected;
  for (const auto& p : model->parameters()) expected.push_back(values(p));
  for (int t = 0; t < 25; ++t) {
    train_step(model, sgd, dtype);
    const double beta = warmup ? std::min(decay, (1.0 + t) / (10.0 + t)) : decay;
    ASSERT_DOUBLE_EQ(ema.next_decay(), beta);
    ema.update();
    const auto params = model->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto w = values(params[i]);
      const auto got = values(ema.averages()[i]);
      for (std::size_t k = 0; k < w.size(); ++k) {
        expected[i][k] = beta * expected[i][k] + (1 - beta) * w[k];
        ASSERT_NEAR(got[k], expected[i][k], tolerance)
            << "step " << t << " tensor " << i << " element " << k;
      }
    }
  }
  EXPECT_EQ(ema.num_updates(), 25);
}

TEST(EMA, MatchesTheRecurrenceStepByStepInFloat64) {
  check_recurrence(torch::kDouble, false, 1e-12);
}
TEST(EMA, MatchesTheRecurrenceWithWarmupInFloat64) {
  check_recurrence(torch::kDouble, true, 1e-12);
}
TEST(EMA, MatchesTheRecurrenceInFloat32) { check_recurrence(torch::kFloat, true, 1e-6); }

TEST(EMA, SwapInAndOutRestoresRawWeightsBitForBit) {
  torch::manual_seed(kSeed);
  torch::nn::Linear model(3, 2);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  ExponentialMovingAverage ema(*model, EMAOptions().decay(0.8));
  for (int t = 0; t < 5; ++t) {
    train_step(model, sgd, torch::kFloat);
    ema.update();
  }
  std::vector<at::Tensor> raw;
  for (const auto& p : model->parameters()) raw.push_back(p.detach().clone());
  {
    ExponentialMovingAverage::SwapGuard averaged(ema);
    EXPECT_TRUE(ema.swapped_in());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      EXPECT_TRUE(torch::equal(model->parameters()[i], ema.averages()[i]));
      EXPECT_FALSE(torch::equal(model->parameters()[i], raw[i]));
    }
    EXPECT_THROW(ema.update(), tlkit::Error);
    EXPECT_THROW(ema.swap_in(), tlkit::Error);
  }
  EXPECT_FALSE(ema.swapped_in());
  for (std::size_t i = 0; i < raw.size(); ++i)
    EXPECT_TRUE(torch::equal(model->parameters()[i], raw[i]));
  EXPECT_THROW(ema.swap_out(), tlkit::Error);
  // Training goes on with the raw weights and gradients still flow.
  train_step(model, sgd, torch::kFloat);
  EXPECT_FALSE(torch::equal(model->parameters()[0], raw[0]));
}

TEST(EMA, BuffersAreCopiedOrAveraged) {
  torch::manual_seed(kSeed);
  for (auto mode : {EMABufferMode::kCopy, EMABufferMode::kAverage}) {
    torch::nn::BatchNorm1d bn(4);
    ExponentialMovingAverage ema(*bn, EMAOptions().decay(0.5).buffers(mode));
    const auto buffers = bn->buffers();  // running_mean, running_var, num_batches_tracked
    ASSERT_EQ(ema.averages().size(), bn->parameters().size() + buffers.size());
    const auto mean_before = bn->running_mean.clone();
    bn->train();
    bn(torch::randn({16, 4}) + 3.0);
    ema.update();
    const auto& mean_average = ema.averages()[2];
    if (mode == EMABufferMode::kCopy) {
      EXPECT_TRUE(torch::equal(mean_average, bn->running_mean));
    } else {
      EXPECT_TRUE(torch::allclose(mean_average, 0.5 * mean_before + 0.5 * bn->running_mean));
    }
    EXPECT_EQ(ema.averages()[4].item<std::int64_t>(), 1);  // integer buffer: always copied
  }
}

TEST(EMA, WorksOnTorchScriptModules) {
  torch::jit::Module module("m");
  module.register_parameter("weight", torch::ones({2, 2}), false);
  module.register_buffer("scale", torch::full({2}, 3.0));
  ExponentialMovingAverage ema(module, EMAOptions().decay(0.75).buffers(EMABufferMode::kAverage));
  ASSERT_EQ(ema.averages().size(), 2u);
  {
    torch::NoGradGuard no_grad;
    module.attr("weight").toTensor().fill_(5.0);
    module.attr("scale").toTensor().fill_(7.0);
  }
  ema.update();
  ema.swap_in();
  EXPECT_TRUE(
      torch::allclose(module.attr("weight").toTensor(), torch::full({2, 2}, 0.75 * 1 + 0.25 * 5)));
  EXPECT_TRUE(
      torch::allclose(module.attr("scale").toTensor(), torch::full({2}, 0.75 * 3 + 0.25 * 7)));
  ema.swap_out();
  EXPECT_TRUE(torch::equal(module.attr("weight").toTensor(), torch::full({2, 2}, 5.0)));
}

TEST(EMA, TrainableOnlySkipsFrozenParameters) {
  torch::nn::Linear model(3, 2);
  model->bias.set_requires_grad(false);
  ExponentialMovingAverage ema(*model, EMAOptions().trainable_only(true));
  EXPECT_EQ(ema.averages().size(), 1u);
  EXPECT_THROW(ExponentialMovingAverage(*model, EMAOptions().decay(1.5)), tlkit::Error);
}

TEST(EMA, SaveLoadRoundTripContinuesExactly) {
  torch::manual_seed(kSeed);
  torch::nn::Linear model(3, 2);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  ExponentialMovingAverage ema(*model, EMAOptions().decay(0.9).warmup(true));
  for (int t = 0; t < 4; ++t) {
    train_step(model, sgd, torch::kFloat);
    ema.update();
  }
  torch::serialize::OutputArchive out;
  ema.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);

  ExponentialMovingAverage restored(*model, EMAOptions().decay(0.9).warmup(true));
  restored.load(in);
  EXPECT_EQ(restored.num_updates(), 4);
  for (int t = 0; t < 3; ++t) {
    train_step(model, sgd, torch::kFloat);
    ema.update();
    restored.update();
  }
  for (std::size_t i = 0; i < ema.averages().size(); ++i) {
    EXPECT_TRUE(torch::equal(ema.averages()[i], restored.averages()[i]));
  }

  torch::nn::Linear other(4, 2);
  ExponentialMovingAverage mismatched(*other);
  std::istringstream again(bytes.str());
  torch::serialize::InputArchive in2;
  in2.load_from(again);
  EXPECT_THROW(mismatched.load(in2), tlkit::Error);

  torch::serialize::OutputArchive future;
  future.write("format_version", c10::IValue(std::int64_t{7}));
  std::ostringstream future_bytes;
  future.save_to(future_bytes);
  std::istringstream future_in(future_bytes.str());
  torch::serialize::InputArchive in3;
  in3.load_from(future_in);
  try {
    restored.load(in3);
    FAIL() << "expected tlkit::Error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("format version 7"), std::string::npos) << e.what();
  }
}

}  // namespace
