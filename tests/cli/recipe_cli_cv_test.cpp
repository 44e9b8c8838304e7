// The training-recipe flags end to end on an imbalanced image folder: `tlkit train` and
// `tlkit finetune` with --label-smoothing, --class-weights, --sampler balanced, --accumulate,
// --grad-clip-mode and --monitor val_balanced_acc (the scan's imbalance warning, config.json, the
// resolved weights, results.md's balanced accuracy and per-class recall), and the messages for bad
// values.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/train/loss.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"

namespace fs = std::filesystem;

namespace {

using tlkit::test::contains;
using tlkit::test::csv_column;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

tlkit::Json json_of(const fs::path& file) { return tlkit::Json::parse(tlkit::read_file(file)); }

class RecipeCli : public ::testing::Test {
 protected:
  // 10 training images of a_top and b_middle, 2 of c_bottom (5x: warned about).
  void SetUp() override {
    tlkit::test::make_band_folder(data_, 10, 4, 4);
    for (int i = 2; i < 10; ++i)
      fs::remove(data_ / "train" / "c_bottom" / ("train_" + std::to_string(i) + ".png"));
  }
  std::string train(const fs::path& out, const std::string& extra) const {
    return "train --model " + quoted(tlkit::test::tiny_model()) + " --reinit --data " +
           quoted(data_) + " --batch-size 4 --epochs 2 --seed 3 --no-progress --out " +
           quoted(out) + " " + extra;
  }
  tlkit::test::TempDir dir_;
  fs::path data_ = dir_ / "bands";
};

}  // namespace

TEST_F(RecipeCli, TrainTakesEveryRecipeFlagAndRecordsIt) {
  const auto out = dir_ / "run";
  const auto result = tlkit_cli(train(out,
                                      "--label-smoothing 0.1 --class-weights auto --sampler "
                                      "balanced --accumulate 2 --monitor val_balanced_acc "
                                      "--grad-clip 0.05 --grad-clip-mode agc"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "'a_top' has 10 images, 'c_bottom' only 2 (5.0x)"))
      << result.output;
  // scikit-learn's balanced weights: 22 / (3 x 10), 22 / (3 x 10), 22 / (3 x 2).
  const auto config = json_of(out / "config.json");
  EXPECT_EQ(config.at("fit").at("label_smoothing").as_double(), 0.1);
  EXPECT_EQ(config.at("fit").at("class_weights").as_string(), "auto");
  EXPECT_EQ(config.at("fit").at("accumulate").as_int(), 2);
  EXPECT_EQ(config.at("fit").at("monitor").as_string(), "val_balanced_acc");
  EXPECT_EQ(config.at("data").at("sampler").as_string(), "balanced");
  EXPECT_EQ(config.at("fit").at("grad_clip_mode").as_string(), "agc");
  const auto resolved = json_of(out / "summary.json").at("resolved");
  const auto weights = resolved.at("fit").at("class_weights").as_string();
  EXPECT_EQ(weights, tlkit::train::format_class_weights({22.0 / 30, 22.0 / 30, 22.0 / 6}));
  EXPECT_TRUE(contains(result.output, "class weights (auto")) << result.output;
  // The monitored metric is recorded per epoch; results.md has balanced accuracy and recall.
  EXPECT_EQ(csv_column(out / "metrics.csv", "val_balanced_acc").size(), 2u);
  const auto results = tlkit::read_file(out / "results.md");
  EXPECT_TRUE(contains(results, "balanced accuracy")) << results;
  EXPECT_TRUE(contains(results, "| class | precision | recall | F1 | images |")) << results;
  EXPECT_TRUE(contains(results, "| c_bottom |")) << results;
}

// --mixup/--cutmix: train mixes its image batches (and says what train_acc then counts),
// config.json records every mixing setting, and --config repeats them.
TEST_F(RecipeCli, TrainMixesBatchesAndRecordsTheSettings) {
  const auto out = dir_ / "mixed";
  const auto result = tlkit_cli(train(out,
                                      "--mixup 0.2 --cutmix 1 --mix-prob 0.8 --mix-switch-prob "
                                      "0.3 --mix-off-epoch 1 --label-smoothing 0.1"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "batch mixing: mixup alpha 0.2, cutmix alpha 1"))
      << result.output;
  EXPECT_TRUE(contains(result.output, "train_acc counts the target with the larger share"))
      << result.output;
  const auto fit = json_of(out / "config.json").at("fit");
  EXPECT_EQ(fit.at("mixup").as_double(), 0.2);
  EXPECT_EQ(fit.at("cutmix").as_double(), 1.0);
  EXPECT_EQ(fit.at("mix_prob").as_double(), 0.8);
  EXPECT_EQ(fit.at("mix_switch_prob").as_double(), 0.3);
  EXPECT_EQ(fit.at("mix_off_epoch").as_int(), 1);
  EXPECT_EQ(csv_column(out / "metrics.csv", "train_acc").size(), 2u);
  // The help names every flag.
  const auto help = tlkit_cli("train --help").output;
  for (const auto* flag : {"--mixup", "--cutmix", "--mix-prob", "--mix-switch-prob",
                           "--mix-off-epoch"})
    EXPECT_TRUE(contains(help, flag)) << flag;
  EXPECT_TRUE(contains(tlkit_cli("finetune --help").output, "not stage 1"));
}

// --augment and --random-erasing: train augments its images (and says how), config.json records
// the settings, --config repeats them, and a resume may not change them.
TEST_F(RecipeCli, TrainAugmentsImagesAndRecordsTheSettings) {
  const auto out = dir_ / "augmented";
  auto result = tlkit_cli(train(out, "--augment trivial --random-erasing 0.25"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "training augmentation: random crop 0.5-1 of the area, flip "
                                      "0.5, TrivialAugmentWide, random erasing 0.25 (value 0)"))
      << result.output;
  const auto data = json_of(out / "config.json").at("data");
  EXPECT_EQ(data.at("augment_policy").as_string(), "trivial");
  EXPECT_EQ(data.at("random_erasing").as_double(), 0.25);
  EXPECT_EQ(data.at("erasing_value").as_string(), "0");
  EXPECT_EQ(csv_column(out / "metrics.csv", "train_loss").size(), 2u);
  // --config repeats them; a flag beside it overrides.
  const auto again = dir_ / "again";
  result = tlkit_cli("train --config " + quoted(out / "config.json") + " --out " + quoted(again) +
                     " --augment rand:2,9 --erasing-value random");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto repeated = json_of(again / "config.json").at("data");
  EXPECT_EQ(repeated.at("augment_policy").as_string(), "rand:2,9");
  EXPECT_EQ(repeated.at("random_erasing").as_double(), 0.25);
  EXPECT_EQ(repeated.at("erasing_value").as_string(), "random");
  // A resume with another policy is refused, naming the flag.
  result = tlkit_cli(train(out, "--augment rand:2,9 --random-erasing 0.25 --epochs 3 --resume"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "--augment: the run used \"trivial\", now \"rand:2,9\""))
      << result.output;
  for (const auto* command : {"train --help", "finetune --help"}) {
    const auto help = tlkit_cli(command).output;
    for (const auto* flag : {"--augment", "--random-erasing", "--erasing-value"})
      EXPECT_TRUE(contains(help, flag)) << command << " " << flag;
    EXPECT_TRUE(contains(help, "TrivialAugmentWide")) << command;
  }
}

TEST_F(RecipeCli, FinetuneAugmentsStageTwo) {
  const auto out = dir_ / "finetune_augmented";
  const auto result =
      tlkit_cli("finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                quoted(data_) + " --out " + quoted(out) +
                " --head-from classifier.6 --head-epochs 1 --epochs 1 --batch-size 6 --no-progress "
                "--augment rand:1,5 --random-erasing 0.5 --erasing-value random");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "RandAugment 1 ops at magnitude 5, random erasing 0.5"))
      << result.output;
  const auto data = json_of(out / "config.json").at("data");
  EXPECT_EQ(data.at("augment_policy").as_string(), "rand:1,5");
  EXPECT_EQ(data.at("erasing_value").as_string(), "random");
}

TEST_F(RecipeCli, FinetuneMonitorsBalancedAccuracyWithExplicitWeights) {
  const auto out = dir_ / "finetune";
  const auto result =
      tlkit_cli("finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                quoted(data_) + " --out " + quoted(out) +
                " --head-from classifier.6 --head-epochs 1 --epochs 1 --batch-size 6 --no-progress "
                "--class-weights 1,1,5 --label-smoothing 0.2 --monitor val_balanced_acc");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "highest val_balanced_acc on validation")) << result.output;
  EXPECT_EQ(json_of(out / "summary.json").at("resolved").at("fit").at("class_weights").as_string(),
            "1,1,5");
}

TEST_F(RecipeCli, BadRecipeValuesAreRefusedNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--label-smoothing 1", "--label-smoothing must be in [0, 1)"},
      {"--label-smoothing -0.1", "--label-smoothing must be in [0, 1)"},
      {"--class-weights 1,2", "gives 2 weights but the data has 3 classes"},
      {"--class-weights 1,0,1", "positive"},
      {"--class-weights balanced", "not none, auto or a list"},
      {"--sampler weighted", "--sampler must be shuffle or balanced"},
      {"--accumulate 0", "--accumulate must be in [1, 4096]"},
      {"--monitor val_balanced", "--monitor must be val_loss, val_acc or val_balanced_acc"},
      {"--grad-clip-mode l2", "--grad-clip-mode must be norm, value or agc"},
      {"--mixup -0.2", "--mixup must be a Beta alpha >= 0"},
      {"--cutmix -1", "--cutmix must be a Beta alpha >= 0"},
      {"--mixup 0.2 --mix-prob 1.5", "--mix-prob must be a probability in [0, 1]"},
      {"--mix-switch-prob -0.1", "--mix-switch-prob must be a probability in [0, 1]"},
      {"--mix-off-epoch -1", "--mix-off-epoch must be >= 0"},
      {"--augment rand:3", "--augment: augmentation 'rand:3' needs two numbers N,M"},
      {"--augment foo", "--augment: unknown augmentation 'foo'; use none, trivial"},
      {"--augment rand:2,31", "M (the magnitude bin) must be in [0, 30]"},
      {"--random-erasing 1.5", "--random-erasing must be a probability in [0, 1]"},
      {"--random-erasing -0.1", "--random-erasing must be a probability in [0, 1]"},
      {"--erasing-value 1", "--erasing-value must be 0 or random"},
  };
  for (const auto& [flags, message] : cases) {
    const auto result = tlkit_cli(train(dir_ / "bad", flags));
    EXPECT_NE(result.exit_code, 0) << flags;
    EXPECT_TRUE(contains(result.output, message)) << flags << ": " << result.output;
  }
}
