// ONNX export of imported torchvision networks (residual additions, depthwise convolutions,
// squeeze-and-excitation, hard-swish, SiLU): OpenCV's DNN module gives the TorchScript model's
// probabilities. Random torchvision weights with randomised batch-norm statistics
// (scripts/make_torchvision_weights.py), imported by tlkit import.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/model/import.h>
#include <tlkit/model/onnx_export.h>

#include "model/opencv_dnn.h"
#include "support/test_support.h"

TEST(OnnxImported, TorchvisionNetworksGiveTheSameSoftmaxInOpenCv) {
  if (tlkit::test::run_command(tlkit::test::torch_python() + " -c 'import torchvision'")
          .exit_code != 0)
    GTEST_SKIP() << "Python torchvision is not installed";
  tlkit::test::TempDir dir;
  const auto made = tlkit::test::run_command(
      tlkit::test::torch_python() + " " +
      tlkit::test::quoted(tlkit::test::source_dir() / "scripts/make_torchvision_weights.py") +
      " --size 32 --models resnet18:zip,mobilenet_v3_small:zip,efficientnet_b0:zip --out " +
      tlkit::test::quoted(dir.path()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  torch::manual_seed(0);
  const auto images = torch::randn({3, 3, 224, 224});
  for (const std::string arch : {"resnet18", "mobilenet_v3_small", "efficientnet_b0"}) {
    SCOPED_TRACE(arch);
    auto model =
        tlkit::model::import_torchvision(arch, (dir.path() / (arch + "_zip.pth")).string());
    model.train(false);
    // torchvision initialises MobileNet's and EfficientNet's classifier near zero (logits ~0.01):
    // scaled to logits of std ~2, so that the comparison of probabilities means something.
    {
      torch::NoGradGuard no_grad;
      const double spread = model.forward(images).std().item<double>();
      const auto head = model.find_head() + ".";
      for (const auto& p : model.module().named_parameters(/*recurse=*/true))
        if (p.name.rfind(head, 0) == 0) p.value.mul_(2 / spread);
    }
    at::Tensor expected;
    {
      torch::NoGradGuard no_grad;
      expected = model.forward(images);
    }
    const auto got = tlkit::test::opencv_logits(tlkit::model::onnx_model_bytes(model), images);
    ASSERT_EQ(got.sizes(), expected.sizes());
    const double logits = (got - expected).abs().max().item<double>();
    const double softmax =
        (torch::softmax(got, 1) - torch::softmax(expected, 1)).abs().max().item<double>();
    std::printf("%s: max |logit diff| %.3g, max |softmax diff| %.3g, logit std %.3g\n",
                arch.c_str(), logits, softmax, expected.std().item<double>());
    EXPECT_LT(softmax, 1e-4);
    EXPECT_LT(logits, 1e-3 * expected.abs().max().item<double>());
    // A comparison that means something: the logits are not constant.
    EXPECT_GT(expected.std().item<double>(), 0.1);
  }
}
