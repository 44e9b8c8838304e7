#include <tlkit/model/export.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/core/npy.h>
#include <tlkit/model/classifier.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::model::Classifier;
using tlkit::test::TempDir;

// The exported file runs in Python's torch.jit.load with the new classes, the same scores as
// tlkit's forward, and carries class names and preprocessing.
TEST(Export, PythonRunsTheExportedModelWithTheSameScores) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model());
  torch::manual_seed(11);
  model.freeze_all();
  model.replace_head(4, {"apple", "pear", "plum", "fig"});
  model.train(true);  // export must still save eval mode
  tlkit::model::export_model(model, dir / "model.pt");
  EXPECT_TRUE(model.is_training());

  const auto input = torch::randn({5, 3, 16, 16});
  tlkit::write_npy(dir / "input.npy", input);
  model.train(false);
  torch::Tensor ours;
  {
    torch::NoGradGuard no_grad;
    ours = model.forward(input);
  }
  tlkit::write_npy(dir / "ours.npy", ours);
  const auto result = tlkit::test::run_python(
      "import numpy as np\n"
      "m = torch.jit.load('{dir}/model.pt')\n"
      "assert not m.training, 'saved in training mode'\n"
      "assert list(m.tlkit_class_names) == ['apple', 'pear', 'plum', 'fig'], m.tlkit_class_names\n"
      "assert m.tlkit_input_size == 16 and m.tlkit_crop == 16 and len(m.tlkit_mean) == 3\n"
      "assert m.tlkit_architecture == 'vgg_tiny' and m.tlkit_head == 'classifier.6'\n"
      "x = torch.from_numpy(np.load('{dir}/input.npy'))\n"
      "with torch.no_grad(): y = m(x)\n"
      "ours = torch.from_numpy(np.load('{dir}/ours.npy'))\n"
      "assert y.shape == (5, 4), y.shape\n"
      "diff = (y - ours).abs().max().item()\n"
      "print('max abs diff', diff)\n"
      "sys.exit(0 if diff < 1e-5 else 1)\n",
      dir.path());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  // And tlkit reads its own export back with the new metadata.
  const auto back = Classifier::load(dir / "model.pt");
  EXPECT_EQ(back.num_classes(), 4);
  EXPECT_EQ(back.class_names()[3], "fig");
}

TEST(Export, FailureLeavesNoFile) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model());
  fs::create_directories(dir / "blocked");
  EXPECT_THROW(tlkit::model::export_model(model, dir / "blocked"),
               tlkit::Error);  // a folder is in the way
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), "blocked") << "left behind: " << entry.path();
  }
}
