// The prediction from test-time augmentation views is the mean of the views' softmax: flip TTA
// of a model equals the softmax of the image and of its mirror computed directly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/tta.h>
#include <tlkit/train/network.h>
#include <tlkit/train/tta_network.h>

#include "model/fixtures.h"

namespace {

// vgg_tiny (resize 16, crop 16) made confident. The images are 16 x 16, so preprocessing leaves
// their geometry as it is: preprocessing the mirror mirrors the input.
TEST(TtaNetwork, FlipIsTheMeanSoftmaxOfTheImageAndItsMirror) {
  auto model = tlkit::model::Classifier::load(tlkit::test::tiny_model());
  torch::manual_seed(11);
  tlkit::test::make_lively(model, torch::randn({8, 3, 16, 16}));
  model.train(false);
  torch::NoGradGuard no_grad;
  const auto eval = tlkit::pipeline::eval_transform(model);
  const auto tta = tlkit::pipeline::tta_transform(model, tlkit::data::TtaMode::kFlip);
  std::mt19937_64 rng(0);
  std::vector<at::Tensor> views, direct;
  for (int i = 0; i < 4; ++i) {
    const auto image = torch::randint(0, 256, {16, 16, 3}).to(torch::kByte);
    views.push_back((*tta)(image, rng));
    const auto x = torch::stack({(*eval)(image, rng), (*eval)(image.flip({1}), rng)});
    // p = (softmax(f(x)) + softmax(f(mirror x))) / 2, in float64
    direct.push_back(torch::softmax(model.forward(x).to(torch::kDouble), 1).mean(0));
  }
  const auto expected = torch::stack(direct);
  const auto forward = [&](const at::Tensor& x) { return model.forward(x); };
  const auto got = tlkit::train::mean_softmax_over_views(torch::stack(views), forward).exp();
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-6);
  // Not trivially equal: the mirror changes the prediction.
  const auto plain =
      torch::softmax(model.forward(torch::stack(views).select(1, 0)).to(torch::kDouble), 1);
  EXPECT_GT((plain - expected).abs().max().item<double>(), 1e-3);

  // The network wrapper gives the same (as log-probabilities).
  tlkit::train::ScriptNetwork script(model.module());
  tlkit::train::TtaNetwork network(script);
  network.train(false);
  EXPECT_LT((network.forward(torch::stack(views)).exp() - expected).abs().max().item<double>(),
            1e-6);
}

}  // namespace
