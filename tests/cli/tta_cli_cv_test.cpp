// --tta on `tlkit evaluate` and `tlkit predict`: a bad value is a clear usage error, the mode is
// in evaluate's output and JSON, and predict prints the averaged probabilities.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"
#include "support/test_support.h"

using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

namespace {

class TtaCli : public ::testing::Test {
 protected:
  void SetUp() override {
    tlkit::test::make_band_folder(dir_ / "data", 1, 1, 2);
    model_ = tlkit::test::export_model_file(
        "--arch vgg_tiny --random-init --num-classes 3 --class-names a_top,b_middle,c_bottom",
        "bands.pt");
  }
  std::string evaluate(const std::string& extra) const {
    return "evaluate --model " + quoted(model_) + " --data " + quoted(dir_ / "data") +
           " --split test " + extra;
  }
  tlkit::test::TempDir dir_;
  std::filesystem::path model_;
};

}  // namespace

TEST_F(TtaCli, ABadValueIsAClearError) {
  for (const std::string& command : std::vector<std::string>{
           evaluate("--tta mirror"), "predict --model " + quoted(model_) + " --tta mirror " +
                                         quoted(dir_ / "data" / "test")}) {
    const auto result = tlkit_cli(command);
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_TRUE(contains(result.output, "--tta mirror: use none, flip, five-crop or ten-crop"))
        << result.output;
  }
}

TEST_F(TtaCli, EvaluateReportsTheModeInTextAndJson) {
  const auto json = dir_ / "m.json";
  auto result = tlkit_cli(evaluate("--tta ten-crop --json " + quoted(json)));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "test-time augmentation ten-crop (10 views per image)"))
      << result.output;
  const auto metrics = tlkit::Json::parse(tlkit::read_file(json));
  EXPECT_EQ(metrics.at("tta").as_string(), "ten-crop");
  EXPECT_EQ(metrics.at("examples").as_int(), 6);
  result = tlkit_cli(evaluate("--json " + quoted(json)));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(tlkit::Json::parse(tlkit::read_file(json)).at("tta").as_string(), "none");
}

TEST_F(TtaCli, PredictAveragesTheViews) {
  const auto out = dir_ / "p.csv";
  const auto result = tlkit_cli("predict --model " + quoted(model_) + " --tta flip --top 3 " +
                                quoted(dir_ / "data" / "test") + " --out " + quoted(out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto lines = tlkit::test::lines_of(out);
  EXPECT_EQ(lines.size(), 7u) << tlkit::read_file(out);  // header + 6 images
}
