// Ensembles across runs and model files through the command line: evaluate --model a b,
// evaluate --ensemble RUN1 RUN2, export --ensemble, and the refusal of members that disagree.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/export.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

namespace {

// runs/a and runs/b: vgg_tiny models for the band folder's three classes (different seeds, made
// confident), each saved as a run's model.pt; data/: the band folder.
class EnsembleCli : public ::testing::Test {
 protected:
  void SetUp() override {
    tlkit::test::make_band_folder(dir_ / "data", 1, 1, 4);
    for (int seed : {1, 2}) {
      const auto run = dir_ / "runs" / (seed == 1 ? "a" : "b");
      fs::create_directories(run);
      auto model = tlkit::model::Classifier::load(tlkit::test::export_model_file(
          "--arch vgg_tiny --random-init --seed " + std::to_string(seed) +
              " --num-classes 3 --class-names a_top,b_middle,c_bottom",
          "bands_seed" + std::to_string(seed) + ".pt"));
      torch::manual_seed(seed);
      tlkit::test::make_lively(model, torch::randn({8, 3, 16, 16}), 2.5,
                               static_cast<std::uint64_t>(seed));
      tlkit::model::export_model(model, run / "model.pt");
    }
  }
  std::string data() const { return quoted(dir_ / "data") + " --split test"; }
  std::string run(const char* name) const { return quoted(dir_ / "runs" / name); }
  tlkit::Json metrics(const std::string& file) const {
    return tlkit::Json::parse(tlkit::read_file(dir_ / file));
  }
  tlkit::test::TempDir dir_;
};

}  // namespace

// The same two members evaluated as model files, as runs, and as the exported ensemble file give
// the same metrics.
TEST_F(EnsembleCli, ModelsRunsAndTheExportedFileAgree) {
  const auto a = quoted(dir_ / "runs" / "a" / "model.pt");
  const auto b = quoted(dir_ / "runs" / "b" / "model.pt");
  auto result = tlkit_cli("evaluate --model " + a + " --model " + b + " --data " + data() +
                          " --json " + quoted(dir_ / "models.json"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "ensemble of 2 models")) << result.output;

  result = tlkit_cli("evaluate --ensemble " + run("a") + " " + run("b") + " --data " + data() +
                     " --json " + quoted(dir_ / "runs.json"));
  ASSERT_EQ(result.exit_code, 0) << result.output;

  result = tlkit_cli("export --ensemble " + run("a") + " " + run("b") + " --out " +
                     quoted(dir_ / "ens.pt"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "wrote an ensemble of 2 members")) << result.output;
  result = tlkit_cli("evaluate --model " + quoted(dir_ / "ens.pt") + " --data " + data() +
                     " --json " + quoted(dir_ / "file.json"));
  ASSERT_EQ(result.exit_code, 0) << result.output;

  const auto models = metrics("models.json"), runs = metrics("runs.json"),
             file = metrics("file.json");
  for (const auto* other : {&runs, &file}) {
    EXPECT_DOUBLE_EQ(other->at("accuracy").as_double(), models.at("accuracy").as_double());
    EXPECT_NEAR(other->at("nll").as_double(), models.at("nll").as_double(), 1e-6);
  }
  // A single member differs: the ensemble is not one of them in disguise.
  result = tlkit_cli("evaluate --model " + a + " --data " + data() + " --json " +
                     quoted(dir_ / "a.json"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_GT(std::abs(metrics("a.json").at("nll").as_double() - models.at("nll").as_double()), 1e-3);
}

TEST_F(EnsembleCli, RefusesMembersThatDisagreeAndOnnx) {
  // A member with its classes in another order.
  const auto other = dir_ / "runs" / "c";
  fs::create_directories(other);
  auto model = tlkit::model::Classifier::load(tlkit::test::export_model_file(
      "--arch vgg_tiny --random-init --num-classes 3 --class-names b_middle,a_top,c_bottom",
      "bands_swapped.pt"));
  tlkit::model::export_model(model, other / "model.pt");
  auto result = tlkit_cli("evaluate --ensemble " + run("a") + " " + run("c") + " --data " + data());
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "ensemble members disagree on the class names"))
      << result.output;
  EXPECT_TRUE(contains(result.output, "[a_top, b_middle, c_bottom] but '")) << result.output;

  result = tlkit_cli("export --ensemble " + run("a") + " " + run("b") + " --format onnx --out " +
                     quoted(dir_ / "ens.onnx"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "TorchScript only")) << result.output;

  result = tlkit_cli("evaluate --model " + quoted(dir_ / "runs" / "a" / "model.pt") +
                     " --ensemble " + run("b") + " --data " + data());
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_FALSE(fs::exists(dir_ / "ens.onnx"));
}
