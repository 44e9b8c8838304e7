// --calibrate temperature on `tlkit train` and `tlkit finetune`: T, NLL and ECE before and after
// in summary.json and results.md; model.pt's softmax is softmax(the uncalibrated logits / T) (the
// same run without calibration gives those logits); on small data T comes from the stage-2 folds'
// held-out predictions; a bad value is a clear error.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/temperature.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

namespace {

tlkit::Json json_of(const fs::path& file) { return tlkit::Json::parse(tlkit::read_file(file)); }

// Enough training for predictions better than chance but not all right on val (a T in range).
const std::string kLearns = "--epochs 30 --optimizer adam:lr=0.003";

class CalibrationCli : public ::testing::Test {
 protected:
  void SetUp() override { tlkit::test::make_band_folder(data_, 4, 4, 3); }
  std::string run(const std::string& command, const fs::path& out, const std::string& extra,
                  const fs::path& data = {}) const {
    return command + " --model " + quoted(tlkit::test::tiny_model()) + " --data " +
           quoted(data.empty() ? data_ : data) +
           " --out " + quoted(out) + " --seed 3 --threads 1 --no-progress " + extra;
  }
  tlkit::test::TempDir dir_;
  fs::path data_ = dir_ / "bands";
};

}  // namespace

TEST_F(CalibrationCli, ABadValueIsAClearError) {
  const auto result = tlkit_cli(run("train", dir_ / "bad", "--epochs 1 --calibrate platt"));
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "--calibrate must be none or temperature, got 'platt'"))
      << result.output;
}

TEST_F(CalibrationCli, TrainStoresTemperatureAndTheExportedSoftmaxIsTheLogitsOverT) {
  const auto plain = dir_ / "plain", calibrated = dir_ / "calibrated";
  auto result = tlkit_cli(run("train", plain, kLearns));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  result = tlkit_cli(run("train", calibrated, kLearns + " --calibrate temperature"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(json_of(calibrated / "config.json").at("calibrate").as_string(), "temperature");
  EXPECT_EQ(json_of(plain / "config.json").at("calibrate").as_string(), "none");

  const auto summary = json_of(calibrated / "summary.json");
  const auto& c = summary.at("calibration");
  ASSERT_TRUE(c.at("fitted").as_bool()) << c.dump(2);
  const double t = c.at("temperature").as_double();
  EXPECT_GT(std::abs(t - 1), 1e-3);  // far enough from 1 for the comparison below to mean much
  EXPECT_TRUE(contains(c.at("held_out").as_string(), "val split")) << c.dump(2);
  const auto& held = c.at("held_out_metrics");
  EXPECT_EQ(held.at("examples").as_int(), 12);  // 4 val images per class
  EXPECT_LE(held.at("nll_after").as_double(), held.at("nll_before").as_double());
  EXPECT_TRUE(held.contains("ece_before") && held.contains("ece_after"));
  EXPECT_EQ(c.at("eval_metrics").at("split").as_string(), "test");
  EXPECT_EQ(c.at("eval_metrics").at("examples").as_int(), 9);
  // The exported metrics are model.pt's: the calibrated NLL, the same accuracy.
  const auto before = json_of(plain / "summary.json").at("exported_metrics");
  const auto after = summary.at("exported_metrics");
  EXPECT_EQ(after.at("accuracy").as_double(), before.at("accuracy").as_double());
  EXPECT_NEAR(after.at("nll").as_double(), c.at("eval_metrics").at("nll_after").as_double(), 1e-5);
  EXPECT_NEAR(before.at("nll").as_double(), c.at("eval_metrics").at("nll_before").as_double(),
              1e-5);
  const auto md = tlkit::read_file(calibrated / "results.md");
  EXPECT_TRUE(contains(md, "## Calibration (temperature scaling)")) << md;
  EXPECT_TRUE(contains(md, "| ECE before | ECE after |")) << md;

  // model.pt: softmax(logits) = softmax(the uncalibrated run's logits / T), T in the file.
  auto uncalibrated = tlkit::model::Classifier::load(plain / "model.pt");
  auto model = tlkit::model::Classifier::load(calibrated / "model.pt");
  EXPECT_NEAR(tlkit::model::stored_temperature(model), t, 1e-12);
  EXPECT_EQ(tlkit::model::stored_temperature(uncalibrated), 1.0);
  uncalibrated.train(false);
  model.train(false);
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const auto images = torch::randn({5, 3, 16, 16});
  const auto z = uncalibrated.forward(images).to(torch::kDouble);
  const auto p = model.forward(images).to(torch::kDouble).softmax(1);
  EXPECT_LT((p - (z / t).softmax(1)).abs().max().item<double>(), 1e-6);
  EXPECT_GT((p - z.softmax(1)).abs().max().item<double>(), 1e-4);  // the test can fail
}

TEST_F(CalibrationCli, FinetuneOnSmallDataFitsOnTheFoldsHeldOutPredictions) {
  const auto out = dir_ / "small";
  const auto result = tlkit_cli(run("finetune", out, "--epochs 2 --calibrate temperature"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // 4 val images per class is small: choices (and T) by cross-validation over train + val.
  EXPECT_TRUE(fs::exists(out / "cv" / "fold-1" / "held_out.pt"));
  const auto c = json_of(out / "summary.json").at("calibration");
  EXPECT_TRUE(contains(c.at("held_out").as_string(), "folds' held-out predictions")) << c.dump(2);
  if (c.at("fitted").as_bool()) {
    EXPECT_EQ(c.at("held_out_metrics").at("examples").as_int(), 24);  // every labelled image
    EXPECT_NEAR(tlkit::model::stored_temperature(tlkit::model::Classifier::load(out / "model.pt")),
                c.at("temperature").as_double(), 1e-12);
  }
  EXPECT_TRUE(contains(tlkit::read_file(out / "results.md"), "## Calibration (temperature scaling)"));
}

TEST_F(CalibrationCli, WithoutAnythingHeldOutItIsSkippedSaying) {
  const auto out = dir_ / "nothing";
  const auto result =
      tlkit_cli(run("finetune", out, "--epochs 1 --no-cv --val-split 0 --calibrate temperature",
                    data_ / "train"));  // class folders alone: no val, no test split
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto c = json_of(out / "summary.json").at("calibration");
  EXPECT_FALSE(c.at("fitted").as_bool());
  EXPECT_TRUE(contains(c.at("held_out").as_string(), "nothing held out")) << c.dump(2);
  EXPECT_TRUE(contains(tlkit::read_file(out / "results.md"), "Skipped: nothing held out"));
  EXPECT_EQ(tlkit::model::stored_temperature(tlkit::model::Classifier::load(out / "model.pt")), 1.0);
}
