// --precision and --channels-last through the CLI, on the CPU: what the CPU cannot run is refused
// before any work, bf16 runs (or is refused where this CPU's bf16 convolution is wrong), the
// precision is part of the run's config and of the feature cache's key, and channels-last
// training exports plain weights.

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/train/precision.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::TempDir;
using tlkit::test::tlkit_cli;

namespace {

tlkit::Json json_of(const fs::path& file) { return tlkit::Json::parse(tlkit::read_file(file)); }

class PrecisionCli : public ::testing::Test {
 protected:
  void SetUp() override { tlkit::test::make_band_folder(data_, 6, 3, 3); }
  std::string train_args(const fs::path& out) const {
    return "train --model " + quoted(tlkit::test::tiny_model()) + " --reinit --data " +
           quoted(data_) + " --epochs 2 --batch-size 6 --seed 2 --no-progress --out " + quoted(out);
  }
  TempDir dir_;
  fs::path data_ = dir_ / "bands";
};

}  // namespace

TEST_F(PrecisionCli, WhatTheCpuCannotRunIsRefusedBeforeAnyWork) {
  for (const std::string precision : {"fp16", "tf32"}) {
    const auto out = dir_ / ("run_" + precision);
    const auto result = tlkit_cli(train_args(out) + " --precision " + precision);
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_TRUE(contains(result.output, "--precision " + precision)) << result.output;
    EXPECT_FALSE(fs::exists(out / "config.json"));
  }
  const auto result = tlkit_cli(train_args(dir_ / "run_fp8") + " --precision fp8");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "unknown precision 'fp8'")) << result.output;
  const auto extract =
      tlkit_cli("extract --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                quoted(data_) + " --out " + quoted(dir_ / "features") + " --precision fp16");
  EXPECT_NE(extract.exit_code, 0);
  EXPECT_TRUE(contains(extract.output, "needs a CUDA device")) << extract.output;
}

TEST_F(PrecisionCli, Bf16TrainingOnTheCpuRunsOrIsRefusedWhereThisCpusBf16ConvolutionIsWrong) {
  // vgg_tiny's convolutions have 4 and 8 output channels: the counts oneDNN's bf16 gets wrong on
  // some CPUs. The probe says which this one is.
  const bool wrong = tlkit::train::cpu_bf16_convolution_error(4) > 0.1 ||
                     tlkit::train::cpu_bf16_convolution_error(8) > 0.1;
  const auto out = dir_ / "bf16";
  const auto result = tlkit_cli(train_args(out) + " --precision bf16");
  if (wrong) {
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_TRUE(contains(result.output, "pytorch/pytorch#163347")) << result.output;
    EXPECT_TRUE(contains(result.output, "features.0 (4 output channels")) << result.output;
  } else {
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_EQ(json_of(out / "config.json").at("fit").at("precision").as_string(), "bf16");
    EXPECT_TRUE(fs::exists(out / "model.pt"));
  }
}

TEST_F(PrecisionCli, ChannelsLastTrainingExportsPlainWeightsAndLearnsAsFp32Does) {
  const auto plain = dir_ / "plain", last = dir_ / "channels_last";
  ASSERT_EQ(tlkit_cli(train_args(plain)).exit_code, 0);
  const auto result = tlkit_cli(train_args(last) + " --channels-last");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(json_of(last / "config.json").at("fit").at("channels_last").as_bool());
  // The same arithmetic in another memory order: the same weights up to rounding.
  auto a = torch::jit::load((plain / "model.pt").string());
  auto b = torch::jit::load((last / "model.pt").string());
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  auto ib = pb.begin();
  for (const auto& p : pa) {
    ASSERT_NE(ib, pb.end());
    EXPECT_TRUE((*ib).value.is_contiguous()) << p.name;
    EXPECT_TRUE(torch::allclose(p.value, (*ib).value, 1e-3, 1e-5)) << p.name;
    ++ib;
  }
  // Evaluating with and without --channels-last gives the same numbers.
  const std::string evaluate =
      "evaluate --model " + quoted(last / "model.pt") + " --data " + quoted(data_);
  const auto x = tlkit_cli(evaluate), y = tlkit_cli(evaluate + " --channels-last");
  ASSERT_EQ(x.exit_code, 0) << x.output;
  ASSERT_EQ(y.exit_code, 0) << y.output;
  EXPECT_EQ(x.output.substr(x.output.find("accuracy"), 30),
            y.output.substr(y.output.find("accuracy"), 30));
}

TEST_F(PrecisionCli, Bf16FeaturesAreKeyedByTheirPrecisionAndNotReusedForFp32) {
  if (tlkit::train::cpu_bf16_convolution_error(64) > 0.1)
    GTEST_SKIP() << "this CPU's bf16 convolution is wrong even for 64 channels";
  const auto model =
      tlkit::test::export_model_file("--arch vgg_cifar --random-init --seed 3", "cifar.pt");
  const std::string extract =
      "extract --model " + quoted(model) + " --data " + quoted(data_) + " --input-size 32";
  const auto fp32 = dir_ / "fp32", bf16 = dir_ / "bf16";
  auto result = tlkit_cli(extract + " --out " + quoted(fp32));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  result = tlkit_cli(extract + " --out " + quoted(bf16) + " --precision bf16");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto a = tlkit::pipeline::load_features(fp32), b = tlkit::pipeline::load_features(bf16);
  EXPECT_FALSE(a.manifest.at("key").contains("precision"));  // fp32 keys as before
  EXPECT_EQ(b.manifest.at("key").at("precision").as_string(), "bf16");
  EXPECT_FALSE(torch::equal(a.features, b.features));
  EXPECT_LT((a.features - b.features).abs().max().item<double>(),
            0.25 * a.features.abs().max().item<double>());
  EXPECT_EQ(tlkit::pipeline::stale_reason(b, a.manifest.at("key")),
            "computed at another precision (bf16, now fp32)");
}
