// `tlkit info` and `tlkit extract` on the tiny exported model and a tiny generated image folder.

#include <regex>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/model/classifier.h>
#if TLKIT_WITH_OPENCV
#include <tlkit/data/image_io.h>
#endif

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::TempDir;

namespace {

using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

}  // namespace

TEST(CliInfo, PrintsLayersHeadParametersAndRandomInitWarning) {
  const auto model = tlkit::test::tiny_model();
  const auto result = tlkit_cli("info --model " + quoted(model));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto loaded = tlkit::model::Classifier::load(model);
  EXPECT_TRUE(contains(result.output, "architecture vgg_tiny")) << result.output;
  EXPECT_TRUE(contains(result.output, "parameters   " + std::to_string(loaded.parameter_count())))
      << result.output;
  EXPECT_TRUE(contains(result.output, "WARNING: this model has RANDOM weights")) << result.output;
  EXPECT_TRUE(std::regex_search(result.output,
                                std::regex("classifier\\.6 +Linear +1x10 +170 +yes .*<- head")))
      << result.output;
  EXPECT_TRUE(std::regex_search(result.output, std::regex("features\\.3 +Conv2d +1x8x8x8 +296")))
      << result.output;
}

TEST(CliInfo, ShowsFrozenLayersAndDecayedRates) {
  const auto result =
      tlkit_cli("info --model " + quoted(tlkit::test::tiny_model()) +
                " --unfreeze-from classifier.0 --lr 0.01 --lr-decay 0.5 --num-classes 4");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::regex_search(result.output, std::regex("features\\.0 +Conv2d .* no +frozen")))
      << result.output;
  EXPECT_TRUE(
      std::regex_search(result.output, std::regex("classifier\\.6 +Linear +1x4 .* yes +0\\.01 ")))
      << result.output;
  EXPECT_TRUE(
      std::regex_search(result.output, std::regex("classifier\\.3 +Linear .* yes +0\\.005")))
      << result.output;
  EXPECT_TRUE(
      std::regex_search(result.output, std::regex("classifier\\.0 +Linear .* yes +0\\.0025")))
      << result.output;
  EXPECT_TRUE(contains(result.output, "param groups (3)")) << result.output;

  const auto rules = tlkit_cli("info --model " + quoted(tlkit::test::tiny_model()) +
                               " --lr-rules 'features.*=0,classifier\\.6\\..*=0.1' --lr 0.001");
  ASSERT_EQ(rules.exit_code, 0) << rules.output;
  EXPECT_TRUE(std::regex_search(rules.output, std::regex("features\\.3 +Conv2d .* no +frozen")))
      << rules.output;
  EXPECT_TRUE(std::regex_search(rules.output, std::regex("classifier\\.6 .* yes +0\\.1 ")))
      << rules.output;
  EXPECT_TRUE(std::regex_search(rules.output, std::regex("classifier\\.0 .* yes +0\\.001")))
      << rules.output;
}

TEST(CliInfo, BadInputGivesOneClearMessage) {
  TempDir dir;
  auto result = tlkit_cli("info --model " + quoted(dir / "none.pt"));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, "no such file") && contains(result.output, "export_vgg16.py"))
      << result.output;
  result = tlkit_cli("info");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  result = tlkit_cli("info --model " + quoted(tlkit::test::tiny_model()) +
                     " --unfreeze-from features.77");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, "no layer named 'features.77'")) << result.output;
  result = tlkit_cli("info --help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "Example:")) << result.output;
}

// Bad option values are usage errors (exit 2) that name the option; nothing runs with them.
TEST(CliOptions, BadValuesStrayArgumentsAndAbsurdThreadCountsAreUsageErrors) {
  const auto model = quoted(tlkit::test::tiny_model());
  auto result = tlkit_cli("info --model " + model + " --threads 1.5");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "--threads: '1.5' is not a valid value")) << result.output;
  result = tlkit_cli("info --model=" + model + " --seed=-x");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "--seed: '-x'")) << result.output;
  result = tlkit_cli("info stray --model " + model);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "unexpected argument 'stray'")) << result.output;
  for (const char* threads : {"100000", "-1"}) {
    // 100000 used to hang starting that many OpenMP threads; -1 used to mean "all".
    result = tlkit_cli("info --model " + model + " --threads " + threads);
    EXPECT_EQ(result.exit_code, 2) << threads << ": " << result.output;
    EXPECT_TRUE(contains(result.output, std::string("--threads ") + threads + " is out of range"))
        << result.output;
  }
  EXPECT_EQ(tlkit_cli("info --model " + model + " --threads 1").exit_code, 0);
}

TEST(CliExtract, WritesFeaturesForAnImageFolder) {
#if !TLKIT_WITH_OPENCV
  GTEST_SKIP() << "built without OpenCV: no image folders";
#else
  TempDir dir;
  const std::vector<std::string> classes{"cats", "dogs"};
  for (int i = 0; i < 6; ++i) {
    const auto image = ((torch::arange(24 * 30 * 3, torch::kLong) * (i + 3)) % 256)
                           .to(torch::kByte)
                           .reshape({24, 30, 3});
    fs::create_directories(dir / "images" / classes[i % 2]);
    tlkit::data::write_image(
        dir / "images" / classes[i % 2] / ("img " + std::to_string(i) + ".png"), image);
  }
  const auto out = dir / "features";
  const auto result =
      tlkit_cli("extract --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                quoted(dir / "images") + " --out " + quoted(out) + " --batch-size 4");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "wrote 6 x 16 features (layer classifier.4"))
      << result.output;
  const auto check = tlkit::test::run_python(
      "import numpy as np, json\n"
      "f = np.load('" +
          (out / "features.npy").string() + "'); l = np.load('" + (out / "labels.npy").string() +
          "')\n"
          "assert f.dtype == np.float32 and f.shape == (6, 16) and np.isfinite(f).all(), (f.dtype, "
          "f.shape)\n"
          "assert l.dtype == np.int64 and sorted(l.tolist()) == [0, 0, 0, 1, 1, 1], l\n"
          "m = json.load(open('" +
          (out / "manifest.json").string() +
          "'))\n"
          "assert m['class_names'] == ['cats', 'dogs'] and len(m['sources']) == 6, m\n"
          "assert all(('cats' in s) == (lab == 0) for s, lab in zip(m['sources'], l.tolist()))\n",
      dir.path());
  EXPECT_EQ(check.exit_code, 0) << check.output;

  const auto missing = tlkit_cli("extract --model " + quoted(tlkit::test::tiny_model()) +
                                 " --data " + quoted(dir / "images"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  const auto bad_split =
      tlkit_cli("extract --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                quoted(dir / "images") + " --out " + quoted(dir / "x") + " --split val");
  EXPECT_EQ(bad_split.exit_code, 1) << bad_split.output;
  EXPECT_TRUE(contains(bad_split.output, "no val split")) << bad_split.output;
  EXPECT_FALSE(fs::exists(dir / "x" / "features.npy"));
#endif
}
