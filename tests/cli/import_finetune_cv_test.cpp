// The user path without Python at run time: torchvision weights (written here by Python
// torchvision, random) -> tlkit import -> tlkit info / extract --layer / finetune with its
// defaults on an imported ResNet-18, and the exported model runs in Python.

#include <gtest/gtest.h>

#include "cli/cli_fixtures.h"
#include "support/test_support.h"

using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::TempDir;

namespace {

bool have_torchvision() {
  return tlkit::test::run_command(tlkit::test::torch_python() + " -c 'import torchvision'")
             .exit_code == 0;
}

}  // namespace

// Stage 2 is held to 4 epochs (with the defaults' 40 the test takes minutes on 2 cores).
TEST(CliImport, FinetuneWithDefaultsOnAnImportedResNet18) {
  if (!have_torchvision()) GTEST_SKIP() << "Python torchvision is not installed";
  TempDir dir;
  const auto made = tlkit::test::run_command(
      tlkit::test::torch_python() + " " +
      quoted(tlkit::test::source_dir() / "scripts/make_torchvision_weights.py") +
      " --models resnet18:zip --size 32 --out " + quoted(dir.path()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto model = dir / "resnet18.pt";

  const auto imported = tlkit::test::tlkit_cli("import --arch resnet18 --weights " +
                                               quoted(dir / "resnet18_zip.pth") + " --out " +
                                               quoted(model));
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_TRUE(contains(imported.output, "imported resnet18: 11689512 parameters, 1000 classes, head fc"))
      << imported.output;
  const auto wrong = tlkit::test::tlkit_cli("import --arch resnet34 --weights " +
                                            quoted(dir / "resnet18_zip.pth") + " --out " +
                                            quoted(dir / "x.pt"));
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(contains(wrong.output, "the weights do not fit resnet34: missing layer1.2.conv1.weight"))
      << wrong.output;

  const auto info = tlkit::test::tlkit_cli("info --model " + quoted(model) + " --lr-decay 0.5");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "architecture resnet18")) << info.output;
  EXPECT_TRUE(contains(info.output, "head         fc   (features for extraction: avgpool)"));
  EXPECT_TRUE(contains(info.output, "layer4.1               BasicBlock           1x512x7x7"));
  EXPECT_TRUE(contains(info.output, "lr 0.0005  layer4.1")) << info.output;

  const auto data = dir / "data";
  tlkit::test::make_band_folder(data, 8, 4, 4);
  const std::string small = " --input-size 32 --resize 32 --threads 2";
  const auto extract = tlkit::test::tlkit_cli("extract --model " + quoted(model) + " --data " +
                                              quoted(data / "train") + " --layer layer3.1 --out " +
                                              quoted(dir / "features") + small);
  ASSERT_EQ(extract.exit_code, 0) << extract.output;
  EXPECT_TRUE(contains(extract.output, "24 x 1024")) << extract.output;  // 256 x 2 x 2 at 32 px

  const auto run = dir / "run";
  const auto finetune = tlkit::test::tlkit_cli("finetune --model " + quoted(model) + " --data " +
                                               quoted(data) + " --out " + quoted(run) + small +
                                               " --no-progress --epochs 4");
  ASSERT_EQ(finetune.exit_code, 0) << finetune.output;
  EXPECT_TRUE(contains(finetune.output, "head-from auto")) << finetune.output;
  EXPECT_TRUE(contains(finetune.output, "layer4.1")) << finetune.output;  // a stage 1 candidate
  ASSERT_TRUE(std::filesystem::exists(run / "model.pt"));
  // Python runs the export; the batch norms below the head kept their statistics (frozen, eval).
  const auto python = tlkit::test::run_command(
      tlkit::test::torch_python() + " -c 'import sys, torch\n"
      "m = torch.jit.load(sys.argv[1]).eval(); o = torch.jit.load(sys.argv[2])\n"
      "print(tuple(m(torch.zeros(1, 3, 32, 32)).shape), list(m.tlkit_class_names))\n"
      "print(\"bn1 kept\", torch.equal(m.bn1.running_mean, o.bn1.running_mean))' " +
      quoted(run / "model.pt") + " " + quoted(model));
  ASSERT_EQ(python.exit_code, 0) << python.output;
  EXPECT_TRUE(contains(python.output, "(1, 3) ['a_top', 'b_middle', 'c_bottom']")) << python.output;
  EXPECT_TRUE(contains(python.output, "bn1 kept True")) << python.output;
}
