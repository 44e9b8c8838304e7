// The forward-pass arithmetic count against multiply-adds counted by hand from the layer shapes,
// through the C++ module API and through TorchScript's interpreter.
#include <tlkit/train/flops.h>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <tlkit/train/network.h>

namespace {

using tlkit::train::forward_flops_per_example;

TEST(Flops, ConvolutionsAndLinearLayersCountedFromTheirShapes) {
  namespace nn = torch::nn;
  nn::Sequential net(
      nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)),  // 16x16 out
      nn::ReLU(),
      nn::Conv2d(nn::Conv2dOptions(8, 16, 3).stride(2).padding(1).groups(2)),  // 8x8 out
      nn::Conv2d(nn::Conv2dOptions(16, 16, 3).groups(16)),  // depthwise, 6x6 out
      nn::Flatten(), nn::Linear(16 * 6 * 6, 10));
  auto network = tlkit::train::ModuleNetwork::from(net);
  network->train(true);
  const double macs = 16 * 16 * (8 * 3 * 9)     // the first convolution
                      + 8 * 8 * (16 * 4 * 9)     // grouped: 4 input channels per output
                      + 6 * 6 * (16 * 1 * 9)     // depthwise
                      + 16 * 6 * 6 * 10;         // the linear layer
  EXPECT_DOUBLE_EQ(forward_flops_per_example(*network, torch::randn({3, 3, 16, 16})), 2 * macs);
  EXPECT_TRUE(network->is_training());  // the mode it found is restored
  // Per example: the batch size does not change it; a larger image does.
  EXPECT_DOUBLE_EQ(forward_flops_per_example(*network, torch::randn({1, 3, 16, 16})), 2 * macs);
  nn::Sequential mlp(nn::Linear(20, 30), nn::ReLU(), nn::Linear(30, 5));
  auto mlp_network = tlkit::train::ModuleNetwork::from(mlp);
  EXPECT_DOUBLE_EQ(forward_flops_per_example(*mlp_network, torch::randn({4, 20})),
                   2.0 * (20 * 30 + 30 * 5));
}

TEST(Flops, CountedThroughTorchScript) {
  torch::jit::Module m("Net");
  m.register_parameter("conv_w", torch::randn({4, 2, 5, 5}), false);
  m.register_parameter("fc_w", torch::randn({3, 4 * 4 * 4}), false);
  m.register_parameter("fc_b", torch::randn({3}), false);
  m.define(R"(
def forward(self, x):
    y = torch.conv2d(x, self.conv_w, None, [2, 2], [1, 1])
    y = torch.flatten(torch.relu(y), 1)
    return torch.linear(y, self.fc_w, self.fc_b)
)");
  tlkit::train::ScriptNetwork network(m);
  // 9x9 input, kernel 5, stride 2, padding 1: (9 + 2 - 5) / 2 + 1 = 4 positions per side.
  const double macs = 4 * 4 * (4 * 2 * 25) + 64 * 3;
  EXPECT_DOUBLE_EQ(forward_flops_per_example(network, torch::randn({2, 2, 9, 9})), 2 * macs);
}

}  // namespace
