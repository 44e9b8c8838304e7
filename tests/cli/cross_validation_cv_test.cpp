// Decisions on small data through the CLI: with few validation images (or none, --val-split 0)
// finetune pools every labelled image, makes its choices by stratified k-fold cross-validation,
// reports them (results.md, summary.json, cv/fold-<k>/), fits once more on all the images, and
// --resume continues an interrupted cross-validation from its finished folds.

#include <regex>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/data/image_io.h>
#include <tlkit/model/classifier.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::quoted;
using tlkit::test::TempDir;
using tlkit::test::tlkit_cli;

namespace {

class CrossValidationCli : public ::testing::Test {
 protected:
  // Two classes of `per_class` images in a flat folder (no val/ or test/), plus a test/ tree
  // when `test` > 0.
  fs::path folder(const std::string& name, int per_class, int test = 0) {
    torch::manual_seed(7);
    const auto root = dir_ / name;
    for (const std::string c : {"dark", "light"}) {
      for (int i = 0; i < per_class + test; ++i) {
        const auto sub = test > 0 ? root / (i < per_class ? "train" : "test") / c : root / c;
        fs::create_directories(sub);
        auto image = torch::randint(0, 60, {16, 16, 3}, torch::kLong);
        if (c == "light") image += 150;
        tlkit::data::write_image(sub / ("img_" + std::to_string(i) + ".png"),
                                 image.to(torch::kByte));
      }
    }
    return root;
  }
  std::string finetune(const fs::path& data, const fs::path& out, const std::string& extra) {
    return "finetune --model " + quoted(tlkit::test::tiny_model()) + " --data " + quoted(data) +
           " --out " + quoted(out) +
           " --head-from classifier.6 --head-epochs 3 --epochs 3 --batch-size 4 --seed 2 "
           "--no-progress " +
           extra;
  }
  TempDir dir_;
};

TEST_F(CrossValidationCli, NoValSplitCrossValidatesEveryChoiceAndFitsOnAllImages) {
  const auto data = folder("six", 6, 4);
  const auto out = dir_ / "run";
  const auto result = tlkit_cli(finetune(data, out, "--val-split 0"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::regex_search(
      result.output, std::regex("cross-validation on all 12 labelled images \\(there is no val "
                                "split; stage 1: 5 folds on cached features, stage 2: 3 folds\\)")))
      << result.output;
  // Augmentation is on by default: the folds also train without it (twice the fits).
  EXPECT_TRUE(std::regex_search(
      result.output, std::regex("stage 2 cross-validation: 6 extra fits \\(3 folds x 3 epochs "
                                "on about 8 images each, with and without augmentation\\)")))
      << result.output;
  // Stage 1 and the final fit train on every labelled image.
  EXPECT_TRUE(std::regex_search(result.output, std::regex("extracted 12 x \\d+ features")))
      << result.output;
  for (int k = 1; k <= 3; ++k) {
    const auto fold = out / "cv" / ("fold-" + std::to_string(k));
    const auto csv = tlkit::read_file(fold / "metrics.csv");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4) << csv;  // header + 3 epochs
    EXPECT_NE(csv.find("ema_val_loss"), std::string::npos);
    EXPECT_TRUE(fs::exists(fold / "result.json"));
    EXPECT_TRUE(fs::exists(out / "cv" / ("fold-" + std::to_string(k) + "-no-augmentation") /
                           "result.json"));
  }
  const auto report = tlkit::read_file(out / "results.md");
  EXPECT_NE(report.find("Augmentation (random crop 0.5-1 of the area, flip 0.5): stage 2's best option"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("## Choices by 3-fold cross-validation"), std::string::npos) << report;
  EXPECT_FALSE(fs::exists(out / "cv" / "fold-4"));
  EXPECT_NE(report.find("stage 1 head alone"), std::string::npos) << report;
  EXPECT_NE(report.find("(chosen)"), std::string::npos) << report;
  EXPECT_TRUE(std::regex_search(report, std::regex("\\d+\\.\\d+ \\+- \\d+\\.\\d+"))) << report;
  const auto summary = tlkit::Json::parse(tlkit::read_file(out / "summary.json"));
  EXPECT_FALSE(summary.at("decisions").as_string().empty());
  EXPECT_EQ(summary.at("split").as_string(), "test");
  const auto model = tlkit::model::Classifier::load(out / "model.pt");
  EXPECT_EQ(model.num_classes(), 2);
  // The plan is counted in arithmetic: the step's FLOPs times 3 epochs x 12 images x (2 + 2/3)
  // (3 folds, the held third validated twice with the EMA), twice with the no-augmentation folds.
  const auto plan = tlkit::Json::parse(tlkit::read_file(out / "cv" / "plan.json"));
  const double step = plan.at("flops_per_image_step").as_double();
  EXPECT_GT(step, 0);
  EXPECT_NEAR(plan.at("estimated_flops").as_double(), 2 * step * 3 * 12 * (2 + 2.0 / 3),
              1e-6 * step);
  EXPECT_EQ(plan.at("budget_flops").as_double(), 6e12);
  EXPECT_TRUE(std::regex_search(
      result.output, std::regex("\\d+(\\.\\d)? [MGT]FLOP in all \\(budget 6\\.0 TFLOP")))
      << result.output;
}

TEST_F(CrossValidationCli, TwoImagesPerClassAreNotRefusedAndUseTwoFolds) {
  const auto data = folder("two", 2);
  const auto out = dir_ / "run";
  const auto result = tlkit_cli(finetune(data, out, ""));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::regex_search(result.output,
                                std::regex("cross-validation on all 4 labelled images \\(.*stage 1: 2 "
                                           "folds on cached features, stage 2: 2 folds")))
      << result.output;
  // No test and no val split: nothing is measured, the report says so.
  const auto report = tlkit::read_file(out / "results.md");
  EXPECT_NE(report.find("no test or val split"), std::string::npos) << report;
  EXPECT_TRUE(fs::exists(out / "model.pt"));
}

TEST_F(CrossValidationCli, NoCvWithoutValExportsTheLastWeightsOfTheFullBudget) {
  const auto data = folder("six", 6, 2);
  const auto out = dir_ / "run";
  const auto result = tlkit_cli(finetune(data, out, "--val-split 0 --no-cv"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_FALSE(fs::exists(out / "cv"));
  EXPECT_TRUE(std::regex_search(result.output, std::regex("exported the last weights")))
      << result.output;
  const auto both = tlkit_cli(finetune(data, dir_ / "bad", "--no-cv --cv-folds 3"));
  EXPECT_NE(both.exit_code, 0);
  const auto one = tlkit_cli(finetune(data, dir_ / "bad", "--cv-folds 1"));
  EXPECT_NE(one.exit_code, 0);
  EXPECT_NE(one.output.find("--cv-folds must be at least 2"), std::string::npos) << one.output;
}

// Mirror images of each other are the two classes: a horizontal flip turns one into the other,
// so training with flips confuses them and the folds must choose to train without augmentation.
TEST_F(CrossValidationCli, TheFoldsChooseNoAugmentationWhenFlipsChangeTheClass) {
  torch::manual_seed(11);
  const auto root = dir_ / "mirror";
  for (const std::string c : {"left", "right"}) {
    for (int i = 0; i < 8; ++i) {
      const auto sub = root / c;
      fs::create_directories(sub);
      auto image = torch::randint(0, 40, {16, 16, 3}, torch::kLong);
      auto bright = image.slice(1, c == "left" ? 0 : 8, c == "left" ? 8 : 16);
      bright += 180;
      tlkit::data::write_image(sub / ("img_" + std::to_string(i) + ".png"), image.to(torch::kByte));
    }
  }
  const auto out = dir_ / "run";
  const auto result =
      tlkit_cli(finetune(root, out, "--val-split 0 --flip 1 --min-crop-scale 1 --epochs 4"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto report = tlkit::read_file(out / "results.md");
  EXPECT_NE(report.find("Stage 2 trains without augmentation"), std::string::npos) << report;

  // Kept as configured: --no-cv-augment, or augmentation off.
  for (const std::string flag : {"--no-cv-augment", "--no-augment"}) {
    const auto kept = dir_ / ("kept" + flag);
    const auto run = tlkit_cli(finetune(root, kept, "--val-split 0 " + flag));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("stage 2 cross-validation: 3 extra fits"), std::string::npos)
        << run.output;
    EXPECT_FALSE(fs::exists(kept / "cv" / "fold-1-no-augmentation"));
    EXPECT_EQ(run.output.find("without augmentation (chosen"), std::string::npos) << run.output;
  }
}

TEST_F(CrossValidationCli, ResumeContinuesFromTheFinishedFoldsToTheSameModel) {
  const auto data = folder("six", 6, 2);
  const auto reference = dir_ / "reference";
  auto result = tlkit_cli(finetune(data, reference, "--val-split 0 --cv-folds 3"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // An interrupted run: fold 2 and the final fit had not finished.
  const auto out = dir_ / "interrupted";
  fs::copy(reference, out, fs::copy_options::recursive);
  fs::remove(out / "cv" / "fold-2" / "result.json");
  fs::remove(out / "cv" / "fold-3-no-augmentation" / "result.json");
  fs::remove_all(out / "checkpoints");
  fs::remove(out / "model.pt");
  fs::remove(out / "results.md");
  result = tlkit_cli(finetune(data, out, "--val-split 0 --cv-folds 3 --resume"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("cv fold 1/3: done earlier"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("cv fold 3/3: done earlier"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("cv fold 2/3: done earlier"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("cv fold 1/3 without augmentation: done earlier"), std::string::npos)
      << result.output;
  EXPECT_EQ(result.output.find("cv fold 3/3 without augmentation: done earlier"), std::string::npos)
      << result.output;
  const auto a = tlkit::model::Classifier::load(reference / "model.pt");
  const auto b = tlkit::model::Classifier::load(out / "model.pt");
  const auto pa = a.module().named_parameters(), pb = b.module().named_parameters();
  auto ia = pa.begin();
  for (auto ib = pb.begin(); ib != pb.end(); ++ib, ++ia)
    EXPECT_TRUE(torch::equal((*ia).value, (*ib).value)) << (*ia).name;
  const auto curve = [](const fs::path& run) {
    return tlkit::Json::parse(tlkit::read_file(run / "cv" / "fold-2" / "result.json"))
        .at("val_loss")
        .as_double_list();
  };
  EXPECT_EQ(curve(reference), curve(out));
}

}  // namespace
