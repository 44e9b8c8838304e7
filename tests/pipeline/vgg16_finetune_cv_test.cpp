// The real VGG16 path end to end: scripts/export_vgg16.py exports a full VGG16 (random weights
// here; ImageNet weights on a user's machine), and `tlkit finetune` runs both stages on a few
// 224×224 images: features of classifier.4 (4096-d) cached, a 2-class head trained on them, then
// the top third (features.24 and up) fine-tuned with per-layer lrs and snapshots, and ONE
// TorchScript file exported that Python loads. About two minutes on 2 cores; the ~530 MB files are
// removed after.

#include <algorithm>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/data/image_io.h>
#include <tlkit/model/classifier.h>
#include <tlkit/train/callbacks.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::TempDir;

namespace {

using tlkit::test::parameter;
using tlkit::test::quoted;

}  // namespace

TEST(VGG16Finetune, BothStagesOnA224Folder) {
  TempDir dir;
  const auto model_path = dir / "vgg16.pt";
  auto result =
      tlkit::test::run_command(tlkit::test::torch_python() + " " +
                               quoted(tlkit::test::source_dir() / "scripts/export_vgg16.py") +
                               " --arch vgg16 --random-init --out " + quoted(model_path));
  ASSERT_EQ(result.exit_code, 0) << result.output;

  // 2 classes × (3 train, 2 val, 2 test) images of 224×224: a light and a dark one.
  torch::manual_seed(3);
  const std::vector<std::string> classes{"dark", "light"};
  const std::vector<std::pair<std::string, int>> splits{{"train", 3}, {"val", 2}, {"test", 2}};
  for (const auto& [split, count] : splits)
    for (size_t c = 0; c < classes.size(); ++c) {
      fs::create_directories(dir / "photos" / split / classes[c]);
      for (int i = 0; i < count; ++i) {
        const auto image =
            torch::randint(0, 100, {224, 224, 3}, torch::kLong) + 120 * static_cast<int64_t>(c);
        tlkit::data::write_image(dir / "photos" / split / classes[c] / (std::to_string(i) + ".jpg"),
                                 image.to(torch::kByte));
      }
    }

  const auto out = dir / "run";
  result = tlkit::test::run_command(
      "'" + tlkit::test::cli_path() + "' finetune --no-cv --model " + quoted(model_path) + " --data " +
      quoted(dir / "photos") + " --out " + quoted(out) +
      " --head-from classifier.6 --unfreeze-from features.24" +
      " --head-epochs 3 --epochs 2 --batch-size 3 --schedule restarts:T_0=1" +
      " --optimizer momentum:lr=0.001 --ema-decay 0.5 --no-augment --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::regex_search(result.output,
                                std::regex("extracted 6 x 4096 features \\(layer classifier\\.4")))
      << result.output;
  EXPECT_TRUE(
      std::regex_search(result.output, std::regex("stage 2: group classifier\\.6 lr 0\\.001")))
      << result.output;
  EXPECT_TRUE(std::regex_search(result.output, std::regex("stage 2: group features\\.24 lr")))
      << result.output;
  for (const auto* row : {"feature extraction (stage 1 head)", "fine-tuning: last",
                          "fine-tuning: EMA", "fine-tuning: snapshot ensemble (2)"})
    EXPECT_TRUE(result.output.find(row) != std::string::npos) << row << "\n" << result.output;

  // One exported file: 2 classes with the folder's names, lower layers untouched, upper layers
  // trained.
  auto before = tlkit::model::Classifier::load(model_path);
  auto after = tlkit::model::Classifier::load(out / "model.pt");
  EXPECT_EQ(after.num_classes(), 2);
  EXPECT_EQ(after.class_names(), classes);
  EXPECT_TRUE(
      torch::equal(parameter(before, "features.0.weight"), parameter(after, "features.0.weight")));
  EXPECT_TRUE(torch::equal(parameter(before, "features.21.weight"),
                           parameter(after, "features.21.weight")));
  // The exported model may be the stage-1 head (whichever is best on validation); the fine-tuned
  // weights are in the snapshots.
  const auto snapshot = tlkit::train::load_state(out / "snapshots" / "snapshot_1.pt");
  const auto tuned = std::find_if(snapshot.begin(), snapshot.end(), [](const auto& entry) {
    return entry.first == "features.28.weight";
  });
  ASSERT_NE(tuned, snapshot.end());
  EXPECT_FALSE(torch::equal(parameter(before, "features.28.weight"), tuned->second));
  EXPECT_TRUE(torch::equal(parameter(before, "features.21.weight"),
                           std::find_if(snapshot.begin(), snapshot.end(), [](const auto& entry) {
                             return entry.first == "features.21.weight";
                           })->second));

  // Python runs the exported file and gets the scores LibTorch gets.
  after.train(false);
  const auto scores = after.forward(torch::full({1, 3, 224, 224}, 0.5));
  const auto python = tlkit::test::run_python(
      "m = torch.jit.load('{dir}/run/model.pt').eval()\n"
      "assert list(m.tlkit_class_names) == ['dark', 'light'], m.tlkit_class_names\n"
      "y = m(torch.full((1, 3, 224, 224), 0.5))\n"
      "print(' '.join('%.9g' % v for v in y[0].tolist()))\n",
      dir.path());
  ASSERT_EQ(python.exit_code, 0) << python.output;
  std::istringstream values(python.output);
  for (int64_t k = 0; k < 2; ++k) {
    double value = 0;
    ASSERT_TRUE(values >> value) << python.output;
    EXPECT_NEAR(value, scores[0][k].item<double>(), 1e-4 * (1 + std::abs(value))) << k;
  }
}
