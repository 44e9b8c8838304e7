// `tlkit evaluate --out DIR`: the confusion matrix and the top losses as PNG files, and the most
// confused pairs in the output.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/data/image_io.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

// A random model on the band folder gets most images wrong, so both pictures have content.
TEST(PicturesCli, EvaluateOutWritesTheConfusionMatrixAndTheTopLosses) {
  tlkit::test::TempDir dir;
  tlkit::test::make_band_folder(dir / "data", 1, 1, 4);
  const auto model = tlkit::test::export_model_file(
      "--arch vgg_tiny --random-init --num-classes 3 --class-names a_top,b_middle,c_bottom",
      "bands.pt");
  const auto result =
      tlkit_cli("evaluate --model " + quoted(model) + " --data " + quoted(dir / "data") +
                " --split test --out " + quoted(dir / "pictures"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "most confused (true -> predicted):")) << result.output;
  EXPECT_TRUE(contains(result.output, " images (")) << result.output;  // at least one pair
  for (const char* name : {"confusion_matrix.png", "top_losses.png"}) {
    const auto file = dir / "pictures" / name;
    ASSERT_TRUE(fs::exists(file)) << name << "\n" << result.output;
    EXPECT_GT(fs::file_size(file), 2000u) << name;
    EXPECT_TRUE(contains(result.output, "wrote " + file.string())) << result.output;
    const auto image = tlkit::data::read_image(file);
    EXPECT_GE(image.size(0), 150) << name;
    EXPECT_GE(image.size(1), 250) << name;
  }
  // Without --out: the pairs, no pictures.
  const auto plain = tlkit_cli("evaluate --model " + quoted(model) + " --data " +
                               quoted(dir / "data") + " --split test");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_TRUE(contains(plain.output, "most confused (true -> predicted):")) << plain.output;
  EXPECT_FALSE(contains(plain.output, "wrote ")) << plain.output;
}

// A run folder gets both pictures for the exported model and the pairs in results.md.
TEST(PicturesCli, ARunFolderHasThePicturesOfTheExportedModel) {
  tlkit::test::TempDir dir;
  tlkit::test::make_band_folder(dir / "data", 4, 2, 3);
  const auto out = dir / "run";
  const auto result = tlkit_cli("train --model " + quoted(tlkit::test::tiny_model()) +
                                " --reinit --data " + quoted(dir / "data") +
                                " --batch-size 6 --optimizer adam:lr=0.01 --schedule constant "
                                "--epochs 1 --seed 5 --no-progress --out " +
                                quoted(out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const char* name : {"confusion_matrix.png", "top_losses.png"}) {
    ASSERT_TRUE(fs::exists(out / name)) << name << "\n" << result.output;
    EXPECT_GT(fs::file_size(out / name), 1000u) << name;
  }
  const auto report = tlkit::read_file(out / "results.md");
  EXPECT_TRUE(contains(report, "### Most confused classes (true -> predicted)")) << report;
  EXPECT_TRUE(contains(report, "![confusion_matrix](confusion_matrix.png)")) << report;
}
