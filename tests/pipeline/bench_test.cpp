// tlkit bench's pieces: the test problems match DeepOBS's networks (parameter counts, shapes,
// initialisation), the lr grid and its extension past an edge, the --lr overrides.

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/pipeline/bench.h>
#include <tlkit/pipeline/problems.h>

#include "support/test_support.h"

using namespace tlkit::pipeline;
using tlkit::test::expect_error;

namespace {

std::int64_t parameters(tlkit::train::Network& net) { return net.parameter_count(); }

}  // namespace

// DeepOBS's fmnist_2c2d: 832 + 51,264 + 3,212,288 + 10,250 parameters; biases 0.05, weights a
// normal truncated at two standard deviations (0.05).
TEST(Problems, Fmnist2c2dIsDeepObssNetwork) {
  const auto problem = test_problem("fmnist_2c2d");
  EXPECT_EQ(problem.batch_size, 128);
  EXPECT_EQ(problem.l2, 0.0);
  EXPECT_EQ(problem.input_channels, 1);
  torch::manual_seed(0);
  auto net = problem.make_network(10);
  EXPECT_EQ(parameters(*net), 3274634);
  const auto out = net->forward(torch::rand({4, 1, 28, 28}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{4, 10}));
  for (const auto& p : net->module().named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      EXPECT_TRUE(p.value().eq(0.05f).all().item<bool>()) << p.key();
    } else {
      EXPECT_LE(p.value().abs().max().item<double>(), 0.1 + 1e-7) << p.key();
      EXPECT_NEAR(p.value().std().item<double>(), 0.05 * 0.88, 0.01) << p.key();
    }
  }
}

// DeepOBS's cifar10_3c3d: valid 5x5 conv to 28, TF-"same" 3/2 pooling to 14, valid 3x3 to 12,
// pooling to 6, same 3x3, pooling to 3: 3 x 3 x 128 into the dense layers; 895,210 parameters;
// L2 0.002 on the weights only.
TEST(Problems, Cifar10_3c3dIsDeepObssNetwork) {
  const auto problem = test_problem("cifar10_3c3d");
  EXPECT_EQ(problem.batch_size, 128);
  EXPECT_DOUBLE_EQ(problem.l2, 0.002);
  torch::manual_seed(0);
  auto net = problem.make_network(10);
  EXPECT_EQ(parameters(*net), 895210);
  EXPECT_EQ(net->forward(torch::rand({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
  int regularized = 0;
  for (const auto& p : net->module().named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      EXPECT_TRUE(p.value().eq(0).all().item<bool>()) << p.key();
      EXPECT_FALSE(is_regularized_weight(p.key(), p.value()));
    } else {
      EXPECT_TRUE(is_regularized_weight(p.key(), p.value())) << p.key();
      ++regularized;
    }
  }
  EXPECT_EQ(regularized, 6);
}

// TF-"same" pooling: 4x4 with a 3x3 window and stride 2 gives 2x2, the last window hanging one
// pixel over the right and bottom edges; the padding never wins, even over negative values.
TEST(Problems, SamePoolingPadsRightAndNeverPicksThePadding) {
  const auto x = -torch::arange(1, 17, torch::kFloat).view({1, 1, 4, 4});  // -1 .. -16
  const auto y = same_max_pool2d(x, 3, 2);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_FLOAT_EQ(y[0][0][0][0].item<float>(), -1);   // rows 0-2, cols 0-2
  EXPECT_FLOAT_EQ(y[0][0][0][1].item<float>(), -3);   // rows 0-2, cols 2-3 (+ padding)
  EXPECT_FLOAT_EQ(y[0][0][1][1].item<float>(), -11);  // rows 2-3, cols 2-3 (+ padding)
  EXPECT_EQ(same_max_pool2d(torch::rand({1, 1, 28, 28}), 3, 2).size(2), 14);
  EXPECT_EQ(same_max_pool2d(torch::rand({1, 1, 7, 7}), 2, 2).size(3), 4);
}

TEST(Problems, TheSameSeedGivesTheSameWeights) {
  for (const auto& name : test_problem_names()) {
    torch::manual_seed(5);
    auto a = test_problem(name).make_network(7);
    torch::manual_seed(5);
    auto b = test_problem(name).make_network(7);
    torch::manual_seed(6);
    auto c = test_problem(name).make_network(7);
    const auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
    ASSERT_EQ(pa.size(), pb.size());
    bool differs = false;
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(pa[i].equal(pb[i])) << name << " parameter " << i;
      differs = differs || !pa[i].equal(pc[i]);
    }
    EXPECT_TRUE(differs) << name << ": another seed gave the same weights";
    const auto problem = test_problem(name);
    const auto input =
        torch::rand({2, problem.input_channels, problem.input_size, problem.input_size});
    EXPECT_EQ(a->forward(input).size(1), 7) << name;
  }
}

TEST(Problems, UnknownNameListsTheKnownOnes) {
  expect_error([] { test_problem("mnist_mlp"); }, "fmnist_2c2d, cifar10_3c3d");
}

TEST(LrGrid, LogSpacedPerDecade) {
  const auto grid = parse_lr_grid("1e-4:1:3", "sgd");
  ASSERT_EQ(grid.size(), 13u);
  EXPECT_DOUBLE_EQ(grid.front(), 1e-4);
  EXPECT_NEAR(grid.back(), 1.0, 1e-12);
  for (size_t i = 1; i < grid.size(); ++i)
    EXPECT_NEAR(grid[i] / grid[i - 1], std::cbrt(10.0), 1e-9);
  EXPECT_EQ(parse_lr_grid("0.01:0.01:2", "sgd"), std::vector<double>{0.01});
}

TEST(LrGrid, ExplicitValuesAreSortedAndAutoCentresOnTorchsDefault) {
  EXPECT_EQ(parse_lr_grid("0.1, 1e-3,0.01,0.1", "sgd"), (std::vector<double>{1e-3, 0.01, 0.1}));
  const auto adam = parse_lr_grid("auto", "adam");
  ASSERT_EQ(adam.size(), 3u);
  EXPECT_NEAR(adam[0], 1e-4, 1e-15);
  EXPECT_NEAR(adam[1], 1e-3, 1e-15);
  EXPECT_NEAR(adam[2], 1e-2, 1e-15);
  EXPECT_NEAR(parse_lr_grid("auto", "rmsprop")[1], 1e-2, 1e-15);   // torch's RMSprop default
  EXPECT_NEAR(parse_lr_grid("auto", "momentum")[1], 1e-2, 1e-15);  // no torch default: 0.01
}

TEST(LrGrid, BadGridsAreClearErrors) {
  expect_error([] { parse_lr_grid("fast", "sgd"); }, "'fast' is not a positive number");
  expect_error([] { parse_lr_grid("1:0.1:3", "sgd"); }, "HI must not be below LO");
  expect_error([] { parse_lr_grid("1e-3:1", "sgd"); }, "LO:HI:PER_DECADE");
  expect_error([] { parse_lr_grid("0,0.1", "sgd"); }, "'0' is not a positive number");
  expect_error([] { parse_lr_grid("1e-3:1:2.5", "sgd"); }, "whole number");
}

TEST(LrGrid, ExtendsPastTheEdgeWhereTheBestSits) {
  std::int64_t low = 0, high = 0;
  // Best at the top edge: try one ratio higher.
  std::map<double, double> scores{{1e-3, 0.5}, {1e-2, 0.7}, {1e-1, 0.8}};
  EXPECT_NEAR(next_grid_extension(scores, 10, low, high, 3), 1.0, 1e-12);
  EXPECT_EQ(high, 1);
  // Best inside: settled.
  scores[1.0] = 0.1;
  EXPECT_EQ(next_grid_extension(scores, 10, low, high, 3), 0);
  // Best at the bottom edge.
  std::map<double, double> low_best{{1e-3, 0.9}, {1e-2, 0.7}};
  EXPECT_NEAR(next_grid_extension(low_best, 10, low, high, 3), 1e-4, 1e-16);
  EXPECT_EQ(low, 1);
  // At most max_extensions per side.
  std::int64_t l2 = 3, h2 = 0;
  EXPECT_EQ(next_grid_extension(low_best, 10, l2, h2, 3), 0);
  // Nothing trained anywhere (every run diverged or at 0): no edge to follow.
  std::int64_t l3 = 0, h3 = 0;
  EXPECT_EQ(next_grid_extension({{0.1, 0.0}, {1.0, 0.0}}, 10, l3, h3, 3), 0);
}

TEST(LrOverrides, ParsedAndChecked) {
  const auto lr = parse_lr_overrides("adam=1e-3, sgd=0.1");
  EXPECT_DOUBLE_EQ(lr.at("adam"), 1e-3);
  EXPECT_DOUBLE_EQ(lr.at("sgd"), 0.1);
  EXPECT_TRUE(parse_lr_overrides("").empty());
  expect_error([] { parse_lr_overrides("adam"); }, "use OPTIMIZER=VALUE");
  expect_error([] { parse_lr_overrides("adam=-1"); }, "must be > 0");
  expect_error([] { parse_lr_overrides("adam=x"); }, "is not a number");
}

TEST(BenchConfig, ValidateNamesTheOption) {
  BenchConfig config;
  config.out = "x";
  expect_error([&] { config.validate(); }, "give either --problem");
  config.problem = "fmnist_2c2d";
  config.val_split = 0;
  expect_error([&] { config.validate(); }, "never on test");
  config.val_split = 0.1;
  config.lr = {{"lion", 1e-4}};
  expect_error([&] { config.validate(); }, "'lion' is not one of --optimizers");
  config.lr.clear();
  config.optimizers = {"adam", "lamb"};
  expect_error([&] { config.validate(); }, "lamb");
  config.optimizers = {"adam"};
  config.preprocess.input_size = 64;
  expect_error([&] { config.validate(); }, "apply to --model");
  config.preprocess.input_size = 0;
  config.validate();
}

TEST(BenchRun, JsonRoundTripKeepsDivergedNaNs) {
  BenchRun run;
  run.id = "final-adam-cosine-lr0.001-s0";
  run.phase = "final";
  run.optimizer = "adam";
  run.schedule = "cosine";
  run.lr = 1e-3;
  run.diverged = true;
  run.diverged_at = "epoch 2, step 9";
  run.final_val_loss = NAN;
  run.train_loss = {2.3, NAN};
  run.test_acc = {0.1};
  const auto back = BenchRun::from_json(tlkit::Json::parse(run.to_json().dump()));
  EXPECT_EQ(back.id, run.id);
  EXPECT_TRUE(back.diverged);
  EXPECT_EQ(back.diverged_at, run.diverged_at);
  EXPECT_TRUE(std::isnan(back.final_val_loss));
  ASSERT_EQ(back.train_loss.size(), 2u);
  EXPECT_TRUE(std::isnan(back.train_loss[1]));
  EXPECT_DOUBLE_EQ(back.lr, 1e-3);
}
