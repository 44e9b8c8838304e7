// Batch-norm statistics recomputed in one pass (update_bn with momentum None): each layer's
// running mean and variance become the average over the batches of the batch's mean and unbiased
// variance, through the C++ module API and through TorchScript.
#include <tlkit/train/batch_norm_stats.h>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <tlkit/train/batch_source.h>
#include <tlkit/train/network.h>

namespace {

namespace nn = torch::nn;
using tlkit::train::recompute_batch_norm;

TEST(BatchNormStats, RunningStatisticsBecomeTheAverageOfTheBatchStatistics) {
  torch::manual_seed(3);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(3, 4, 3)), nn::BatchNorm2d(4), nn::ReLU(),
                     nn::Flatten(), nn::Linear(4 * 6 * 6, 2));
  auto conv = net->ptr(0)->as<nn::Conv2dImpl>();
  auto bn = net->ptr(1)->as<nn::BatchNorm2dImpl>();
  bn->running_mean.fill_(5);  // stale statistics, as after averaging snapshots
  bn->running_var.fill_(9);
  const auto inputs = torch::randn({10, 3, 8, 8}) * 2 + 1;
  const auto targets = torch::zeros({10}, torch::kLong);
  tlkit::train::TensorBatchSource source(inputs, targets, 4, /*shuffle=*/false);  // 4 + 4 + 2
  auto network = tlkit::train::ModuleNetwork::from(net);
  network->train(false);
  const auto weight = conv->weight.clone();

  EXPECT_EQ(recompute_batch_norm(*network, source, torch::kCPU), 1);

  // The reference: each batch's statistics of the convolution's output, averaged over batches.
  torch::NoGradGuard no_grad;
  auto mean = torch::zeros({4}, torch::kDouble), var = torch::zeros({4}, torch::kDouble);
  for (const auto& [start, end] : {std::pair{0, 4}, std::pair{4, 8}, std::pair{8, 10}}) {
    const auto y = conv->forward(inputs.slice(0, start, end)).to(torch::kDouble);
    mean += y.mean({0, 2, 3});
    var += y.transpose(0, 1).flatten(1).var(1, /*unbiased=*/true);
  }
  EXPECT_TRUE(torch::allclose(bn->running_mean.to(torch::kDouble), mean / 3, 1e-6, 1e-6))
      << bn->running_mean << mean / 3;
  EXPECT_TRUE(torch::allclose(bn->running_var.to(torch::kDouble), var / 3, 1e-6, 1e-6))
      << bn->running_var << var / 3;
  EXPECT_TRUE(torch::equal(conv->weight, weight));  // only the statistics change
  EXPECT_FALSE(network->is_training());              // the mode found is restored
}

TEST(BatchNormStats, FrozenOrAbsentBatchNormIsLeftAlone) {
  torch::manual_seed(4);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(3, 4, 3)), nn::BatchNorm2d(4));
  auto bn = net->ptr(1)->as<nn::BatchNorm2dImpl>();
  bn->running_mean.fill_(5);
  auto network = tlkit::train::ModuleNetwork::from(net);
  network->set_batch_norm_updates(false);  // --batch-norm frozen: the stored statistics stay
  tlkit::train::TensorBatchSource source(torch::randn({6, 3, 8, 8}), torch::zeros({6}, torch::kLong),
                                         3, false);
  EXPECT_EQ(recompute_batch_norm(*network, source, torch::kCPU), 0);
  EXPECT_TRUE(torch::equal(bn->running_mean, torch::full({4}, 5.0)));

  nn::Sequential plain(nn::Linear(3, 2));
  auto plain_network = tlkit::train::ModuleNetwork::from(plain);
  tlkit::train::TensorBatchSource rows(torch::randn({6, 3}), torch::zeros({6}, torch::kLong), 3,
                                       false);
  EXPECT_EQ(recompute_batch_norm(*plain_network, rows, torch::kCPU), 0);
}

TEST(BatchNormStats, RecomputedThroughTorchScript) {
  torch::jit::Module m("Net");
  m.register_parameter("w", torch::ones({2}).requires_grad_(), false);  // trainable: not frozen
  m.register_parameter("b", torch::zeros({2}).requires_grad_(), false);
  m.register_buffer("running_mean", torch::full({2}, 7.0));
  m.register_buffer("running_var", torch::full({2}, 7.0));
  m.register_attribute("training", c10::BoolType::get(), true);
  m.define(R"(
def forward(self, x):
    return torch.batch_norm(x, self.w, self.b, self.running_mean, self.running_var,
                            self.training, 0.1, 1e-5, False)
)");
  tlkit::train::ScriptNetwork network(m);
  const auto inputs = torch::randn({8, 2});
  tlkit::train::TensorBatchSource source(inputs, torch::zeros({8}, torch::kLong), 4, false);
  EXPECT_EQ(recompute_batch_norm(network, source, torch::kCPU), 1);
  const auto a = inputs.slice(0, 0, 4), b = inputs.slice(0, 4, 8);
  const auto mean = (a.mean(0) + b.mean(0)) / 2;
  const auto var = (a.var(0, true) + b.var(0, true)) / 2;
  EXPECT_TRUE(torch::allclose(m.attr("running_mean").toTensor(), mean, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(m.attr("running_var").toTensor(), var, 1e-5, 1e-6));
}

}  // namespace
