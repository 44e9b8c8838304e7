// A run folder in a user's hands, through the CLI: files tlkit did not write are kept, --config
// never writes over the run it repeats, the input model is never removed, a mistyped rerun touches
// nothing, one writer per folder, no broken model exported, resume checks the model's content and
// the schedule's length, and closed pipes neither kill a run nor hide a lost result.

#include <fstream>
#include <regex>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/data/image_io.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::TempDir;
using tlkit::test::tlkit_cli;

namespace {

class RunFolderCli : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(3);
    for (const std::string name : {"dark", "light"}) {
      fs::create_directories(data_ / name);
      for (int i = 0; i < 6; ++i) {
        auto image = torch::randint(0, 60, {16, 16, 3}, torch::kLong);
        if (name == "light") image += 150;
        tlkit::data::write_image(data_ / name / ("img_" + std::to_string(i) + ".png"),
                                 image.to(torch::kByte));
      }
    }
  }
  std::string train(const fs::path& out, const std::string& extra = "") const {
    return "train --model " + quoted(tlkit::test::tiny_model()) + " --reinit --data " +
           quoted(data_) + " --out " + quoted(out) +
           " --val-split 0.34 --epochs 2 --batch-size 4 --no-progress " + extra;
  }
  TempDir dir_;
  fs::path data_ = dir_ / "images";
};

}  // namespace

TEST_F(RunFolderCli, AFolderWithTheUsersFilesIsRefusedAndKept) {
  const auto proj = dir_ / "proj";
  fs::create_directories(proj / "snapshots");
  std::ofstream(proj / "snapshots" / "holiday.jpg") << "photo";
  const auto result = tlkit_cli(train(proj));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "holds files that tlkit did not write")) << result.output;
  EXPECT_EQ(tlkit::read_file(proj / "snapshots" / "holiday.jpg"), "photo");
  EXPECT_FALSE(fs::exists(proj / tlkit::RunFolder::kMarker));
}

TEST_F(RunFolderCli, RerunsNeverLoseTheRunOrTheInputModel) {
  const auto run = dir_ / "run";
  auto result = tlkit_cli(train(run, "--seed 1"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto model = tlkit::read_file(run / "model.pt");
  const auto config = tlkit::read_file(run / "config.json");
  std::ofstream(run / "notes.txt") << "mine";

  // The README's "same run, another seed" without --out: refused, the run untouched.
  result = tlkit_cli("train --config " + quoted(run / "config.json") + " --seed 2");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "needs --out")) << result.output;
  // Training further from the run's own model into the run: refused, the model kept.
  result = tlkit_cli("train --model " + quoted(run / "model.pt") + " --data " + quoted(data_) +
                     " --out " + quoted(run) + " --epochs 1 --no-progress");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "is a file of the run in")) << result.output;
  // A mistyped layer is found before the run is touched.
  result = tlkit_cli("finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                     quoted(data_) + " --out " + quoted(run) +
                     " --val-split 0.34 --epochs 1 --no-progress --unfreeze-from features.999");
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "features.999")) << result.output;
  EXPECT_EQ(tlkit::read_file(run / "model.pt"), model);
  EXPECT_EQ(tlkit::read_file(run / "config.json"), config);
  EXPECT_FALSE(fs::exists(run / "previous-run"));

  // A real rerun: the earlier run is set aside, then removed once the new one has finished; the
  // user's file stays.
  result = tlkit_cli(train(run, "--seed 2"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "was moved to")) << result.output;
  EXPECT_FALSE(fs::exists(run / "previous-run"));
  EXPECT_EQ(tlkit::read_file(run / "notes.txt"), "mine");
}

TEST_F(RunFolderCli, ASecondWriterIsRefusedNamingTheHolder) {
  const auto run = dir_ / "run";
  tlkit::RunFolder held(run, "train");  // this process holds the folder
  auto result = tlkit_cli(train(run));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(
      contains(result.output, "in use by another tlkit process (pid " + std::to_string(::getpid())))
      << result.output;
}

TEST_F(RunFolderCli, ADivergedRunExportsNothing) {
  const auto run = dir_ / "run";
  const auto result = tlkit_cli(train(run, "--optimizer momentum:lr=1e30"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "NaN/Inf")) << result.output;
  EXPECT_FALSE(fs::exists(run / "model.pt"));
}

TEST_F(RunFolderCli, ResumeChecksTheModelsContentAndTheScheduleLength) {
  const auto run = dir_ / "run";
  const auto model = dir_ / "model.pt";
  fs::copy_file(tlkit::test::tiny_model(), model);
  const auto command = "train --model " + quoted(model) + " --reinit --data " + quoted(data_) +
                       " --out " + quoted(run) + " --val-split 0.34 --batch-size 4 --no-progress";
  auto result = tlkit_cli(command + " --epochs 2 --schedule poly");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto config = tlkit::read_file(run / "config.json");
  // A polynomial decay has ended at lr 0: more epochs on resume would not train.
  result = tlkit_cli(command + " --epochs 4 --schedule poly --resume");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "laid out for 2 epochs and has ended")) << result.output;
  EXPECT_EQ(tlkit::read_file(run / "config.json"), config);  // a refused resume changes nothing
  // The same path, another file.
  fs::remove(model);
  fs::copy_file(
      tlkit::test::export_model_file("--arch vgg_tiny --random-init --seed 1", "tiny_seed1.pt"),
      model);
  result = tlkit_cli(command + " --epochs 2 --schedule poly --resume");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "its content differs (the same path, another file)"))
      << result.output;
  EXPECT_EQ(tlkit::read_file(run / "config.json"), config);

  // A cosine laid out for 2 epochs goes on periodically: a longer resume says what it trains at.
  const auto cosine = dir_ / "cosine";
  const auto again =
      std::regex_replace(command, std::regex("--out '[^']*'"), "--out " + quoted(cosine)) +
      " --schedule cosine";
  ASSERT_EQ(tlkit_cli(again + " --epochs 2").exit_code, 0);
  result = tlkit_cli(again + " --epochs 4 --resume");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output,
                       "keeps its layout for 2 epochs, so epochs 3-4 train at 0 to "
                       "0.5 times the base learning rate"))
      << result.output;
}

TEST_F(RunFolderCli, AClosedPipeDoesNotKillARunAndALostResultIsAnError) {
  const auto run = dir_ / "run";
  const auto rc = dir_ / "rc";
  auto result = tlkit::test::run_command("('" + tlkit::test::cli_path() + "' " + train(run) +
                                         " 2>&1; echo $? > " + quoted(rc) + ") | head -1");
  EXPECT_EQ(tlkit::read_file(rc), "0\n") << result.output;
  EXPECT_TRUE(fs::exists(run / "model.pt"));
  result = tlkit::test::run_command("('" + tlkit::test::cli_path() + "' predict --model " +
                                    quoted(run / "model.pt") + " " +
                                    quoted(data_ / "dark" / "img_0.png") + " > /dev/full)");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "cannot write the predictions")) << result.output;
}

TEST_F(RunFolderCli, LrFindAndBenchWriteOutsideTheData) {
  auto result = tlkit_cli("lr-find --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                          quoted(data_) + " --out " + quoted(data_ / "lr"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "inside the data folder")) << result.output;
  EXPECT_FALSE(fs::exists(data_ / "lr"));
}
