// The one test on the full VGG16 (random weights: ~530 MB file, ~1 min; deleted afterwards):
// load, layer table, parameter count, head replacement and a forward/backward at 224×224.

#include <regex>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/model/classifier.h>

#include "model/fixtures.h"

using tlkit::model::Classifier;
using tlkit::test::TempDir;

TEST(VGG16, FullModelStructureAndHead) {
  TempDir dir;
  const auto path = dir / "vgg16.pt";
  const auto result =
      tlkit::test::run_command(tlkit::test::torch_python() + " '" +
                               (tlkit::test::source_dir() / "scripts/export_vgg16.py").string() +
                               "' --arch vgg16 --random-init --out '" + path.string() + "'");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // The parameter count as Python's torchvision reports it.
  std::smatch match;
  ASSERT_TRUE(std::regex_search(result.output, match, std::regex("vgg16, ([0-9]+) parameters")))
      << result.output;
  const int64_t python_params = std::stoll(match[1]);

  auto model = Classifier::load(path);
  EXPECT_EQ(model.parameter_count(), python_params);
  EXPECT_EQ(model.num_classes(), 1000);
  EXPECT_EQ(model.find_head(), "classifier.6");
  EXPECT_EQ(model.penultimate_layer(), "classifier.4");
  const auto layers = model.layers();
  ASSERT_EQ(layers.size(), 31u + 1u + 7u);  // features.0-30, avgpool, classifier.0-6
  EXPECT_EQ(layers[30].name, "features.30");
  EXPECT_EQ(layers[30].output_shape, (std::vector<int64_t>{1, 512, 7, 7}));
  EXPECT_EQ(layers.back().output_shape, (std::vector<int64_t>{1, 1000}));

  const auto x = torch::randn({1, 3, 224, 224});

  model.freeze_all();
  model.unfreeze_from("classifier");
  model.replace_head(5);
  model.train(true);
  const auto scores = model.forward(x);
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{1, 5}));
  torch::nn::functional::cross_entropy(scores, torch::tensor({2}, torch::kLong)).backward();
  const auto head = model.module().attr("classifier").toModule().attr("6").toModule();
  const auto grad = head.attr("weight").toTensor().grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_EQ(grad.sizes(), (std::vector<int64_t>{5, 4096}));
  EXPECT_GT(grad.abs().sum().item<double>(), 0);
  const auto conv = model.module().attr("features").toModule().attr("0").toModule();
  EXPECT_FALSE(conv.attr("weight").toTensor().grad().defined()) << "frozen layer got a gradient";
}
