// The ONNX file run by OpenCV's DNN module gives the TorchScript model's probabilities.
#include <cstdio>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/data/image_io.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/onnx_export.h>
#include <tlkit/pipeline/build.h>

#include "model/onnx_fixtures.h"
#include "model/opencv_dnn.h"

namespace fs = std::filesystem;
using tlkit::model::Classifier;

namespace {

const fs::path kSampleImages = "/usr/share/doc/opencv-doc/examples/data";

// Photos from OpenCV's samples (Debian package opencv-doc), through the model's own evaluation
// preprocessing (resize, centre crop, normalisation): [N, 3, S, S].
at::Tensor test_images(const Classifier& model) {
  const auto transform = tlkit::pipeline::eval_transform(model);
  std::mt19937_64 rng(0);
  std::vector<at::Tensor> images;
  for (const char* name : {"baboon.jpg", "fruits.jpg", "HappyFish.jpg", "butterfly.jpg",
                           "board.jpg", "apple.jpg", "building.jpg", "orange.jpg"})
    images.push_back((*transform)(tlkit::data::read_image(kSampleImages / name), rng));
  return torch::stack(images);
}

struct Agreement {
  double softmax = 0;  // max |p_onnx - p_torch|
  double logits = 0;
  double top_probability = 0;  // the highest probability TorchScript gives, a check of the fixture
  bool predictions_differ = false;
};

Agreement compare(Classifier& model, const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  model.train(false);
  const auto torch_logits = model.forward(images);
  const auto cv_logits =
      tlkit::test::opencv_logits(tlkit::model::onnx_model_bytes(model), images);
  EXPECT_EQ(cv_logits.sizes(), torch_logits.sizes());
  Agreement a;
  const auto p = torch::softmax(torch_logits, 1);
  a.softmax = (torch::softmax(cv_logits, 1) - p).abs().max().item<double>();
  a.logits = (cv_logits - torch_logits).abs().max().item<double>();
  a.top_probability = p.max().item<double>();
  const auto predicted = p.argmax(1);
  a.predictions_differ = (predicted != predicted[0]).any().item<bool>();
  return a;
}

void expect_agreement(const char* what, Classifier& model, const at::Tensor& images) {
  const auto a = compare(model, images);
  std::printf("%s: %lld images, max |softmax diff| %.3g, max |logit diff| %.3g, top p %.3f\n", what,
              static_cast<long long>(images.size(0)), a.softmax, a.logits, a.top_probability);
  EXPECT_LT(a.softmax, 1e-4) << what;
  // The comparison means something only when the model is confident and not constant.
  EXPECT_GT(a.top_probability, 0.5) << what;
  EXPECT_TRUE(a.predictions_differ) << what;
}

}  // namespace

TEST(OnnxOpenCv, TinyVggGivesTheSameSoftmax) {
  if (!fs::exists(kSampleImages / "baboon.jpg")) GTEST_SKIP() << "opencv-doc is not installed";
  auto model = Classifier::load(tlkit::test::tiny_model());
  const auto images = test_images(model);
  tlkit::test::make_lively(model, images);
  expect_agreement("vgg_tiny", model, images);
}

// Batch norm with statistics away from (0, 1) and adaptive average pooling 4x4 -> 2x2.
TEST(OnnxOpenCv, BatchNormVggGivesTheSameSoftmax) {
  if (!fs::exists(kSampleImages / "baboon.jpg")) GTEST_SKIP() << "opencv-doc is not installed";
  auto model = Classifier::load(
      tlkit::test::export_model_file("--arch vgg_cifar --random-init", "cifar.pt"));
  const auto images = test_images(model);
  tlkit::test::make_lively(model, images);
  expect_agreement("vgg_cifar", model, images);
}

TEST(OnnxOpenCv, MixedGraphGivesTheSameSoftmax) {
  if (!fs::exists(kSampleImages / "baboon.jpg")) GTEST_SKIP() << "opencv-doc is not installed";
  auto model = Classifier::load(tlkit::test::onnx_fixture("mixed.pt"));
  const auto images = test_images(model);
  tlkit::test::make_lively(model, images);
  expect_agreement("mixed", model, images);
}
