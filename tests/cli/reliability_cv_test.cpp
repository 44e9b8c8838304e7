// Faults a long run must survive without losing work or giving a wrong model, through the CLI:
// Ctrl-C / SIGTERM (a checkpoint at the step in hand, exit 130 / 143, an exact resume, also with
// --nproc), a full disk while a checkpoint is written (one clear error, no abort, no temporary
// left), temporaries of killed runs cleaned, and a resume onto renamed class folders refused.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <regex>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/core/npy.h>
#include <tlkit/core/strings.h>
#include <tlkit/data/image_io.h>
#include <tlkit/model/classifier.h>

#include "cli/cli_fixtures.h"
#include "data/data_test_util.h"
#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::csv_column;
using tlkit::test::lines_of;
using tlkit::test::quoted;
using tlkit::test::TempDir;
using tlkit::test::tlkit_cli;

namespace {

// Every file under `dir` whose name marks an unfinished write.
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos)
      found.push_back(entry.path().string());
  return found;
}

class Reliability : public ::testing::Test {
 protected:
  void SetUp() override { tlkit::test::make_band_folder(data_, 8, 4, 4); }

  // Starts `tlkit args` in the background, waits until `trigger` exists, sends `signal` to it and
  // returns the output of the script: "exit=<code>".
  tlkit::test::CommandResult signal_when(const std::string& args, const fs::path& trigger,
                                         const std::string& signal, const fs::path& log) {
    const std::string script = "'" + tlkit::test::cli_path() + "' " + args + " > " + quoted(log) +
                               " 2>&1 & L=$!; " + "for i in $(seq 1200); do [ -s " +
                               quoted(trigger) + " ] && break; sleep 0.05; done; " +
                               "sleep 0.1; kill -" + signal + " $L; wait $L; echo \"exit=$?\"";
    std::ofstream(dir_ / "signal.sh") << script << "\n";
    return tlkit::test::run_command("bash " + quoted(dir_ / "signal.sh"));
  }

  // The resumed run ends as the uninterrupted one: the same metrics.csv lines, the same weights.
  static void expect_same_run(const fs::path& reference, const fs::path& run) {
    EXPECT_EQ(lines_of(run / "metrics.csv"), lines_of(reference / "metrics.csv"));
    auto a = tlkit::model::Classifier::load(reference / "model.pt");
    auto b = tlkit::model::Classifier::load(run / "model.pt");
    for (auto& [name, value] : a.named_parameters())
      EXPECT_TRUE(torch::equal(value, tlkit::test::parameter(b, name))) << name;
  }

  TempDir dir_;
  fs::path data_ = dir_ / "bands";
};

}  // namespace

// Ctrl-C in the middle of a run: the step finishes, last.pt is written at that step, the command
// says how to go on and exits 130; the same command with --resume then ends with the metrics and
// weights of a run that was never interrupted.
TEST_F(Reliability, CtrlCKeepsAResumableCheckpointAndTheResumeMatchesAnUninterruptedRun) {
  const auto model = tlkit::test::export_model_file("--arch vgg_tiny --random-init --dropout 0",
                                                    "tiny_no_dropout.pt");
  // 60 steps per epoch: the signal lands in the middle of one far more often than between two
  // (either way the resume must be exact).
  const auto data = dir_ / "bands40";
  tlkit::test::make_band_folder(data, 40, 4, 4);
  const std::string common = "train --model " + quoted(model) + " --reinit --data " + quoted(data) +
                             " --batch-size 2 --optimizer sgd:lr=0.02,momentum=0.9 --patience 0 "
                             "--seed 5 --no-progress --epochs 10 --dist-timeout 60";
  const auto reference = dir_ / "reference", run = dir_ / "run";
  auto result = tlkit_cli(common + " --out " + quoted(reference));
  ASSERT_EQ(result.exit_code, 0) << result.output;

  const auto log = dir_ / "log.txt";
  result =
      signal_when(common + " --out " + quoted(run), run / "checkpoints" / "last.pt", "INT", log);
  const auto output = tlkit::read_file(log);
  ASSERT_TRUE(contains(result.output, "exit=130")) << result.output << output;
  EXPECT_TRUE(contains(output, "stopped by SIGINT")) << output;
  EXPECT_TRUE(contains(output, "--resume")) << output;
  EXPECT_TRUE(temporaries(run).empty());
  EXPECT_LT(lines_of(run / "metrics.csv").size(), 11u);

  result = tlkit_cli(common + " --resume --out " + quoted(run));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  expect_same_run(reference, run);

  // SIGTERM to a data-parallel launcher: it passes the signal on, every rank stops after the same
  // step, rank 0 writes the checkpoint, the launcher exits 143; resumed with 2 processes the run
  // is the uninterrupted 2-process run exactly.
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  const auto parallel_reference = dir_ / "parallel_reference", parallel = dir_ / "parallel";
  result = tlkit_cli(common + " --nproc 2 --out " + quoted(parallel_reference));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  result = signal_when(common + " --nproc 2 --out " + quoted(parallel),
                       parallel / "checkpoints" / "last.pt", "TERM", log);
  const auto parallel_output = tlkit::read_file(log);
  ASSERT_TRUE(contains(result.output, "exit=143")) << result.output << parallel_output;
  EXPECT_TRUE(contains(parallel_output, "stopped by SIGTERM")) << parallel_output;
  EXPECT_TRUE(temporaries(parallel).empty());
  result = tlkit_cli(common + " --nproc 2 --resume --out " + quoted(parallel));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const auto* column : {"train_loss", "train_acc", "val_loss", "val_acc"}) {
    const auto uninterrupted = csv_column(parallel_reference / "metrics.csv", column);
    EXPECT_EQ(uninterrupted.size(), 10u) << column;
    EXPECT_EQ(csv_column(parallel / "metrics.csv", column), uninterrupted) << column;
  }
}

// Ctrl-C after the last step, while the trained model is evaluated on a large test split: exit
// 130 naming what was stopped, no model.pt, and --resume evaluates and exports the same model as
// an uninterrupted run.
TEST_F(Reliability, CtrlCDuringTheFinalEvaluationStopsAndTheResumeExportsTheSameModel) {
  const auto data = dir_ / "big_test";
  tlkit::test::make_band_folder(data, 4, 2, 400);
  // 1,200 test images upscaled to 96 x 96: seconds to evaluate, the signal lands there.
  const auto model =
      tlkit::test::export_model_file("--arch vgg_tiny --random-init --input-size 96", "tiny96.pt");
  const std::string common = "train --model " + quoted(model) + " --reinit --data " + quoted(data) +
                             " --batch-size 4 --seed 5 --no-progress --epochs 1 --threads 1";
  const auto reference = dir_ / "reference", run = dir_ / "run";
  auto result = tlkit_cli(common + " --out " + quoted(reference));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto log = dir_ / "log.txt";
  result =
      signal_when(common + " --out " + quoted(run), run / "checkpoints" / "last.pt", "INT", log);
  const auto output = tlkit::read_file(log);
  ASSERT_TRUE(contains(result.output, "exit=130")) << result.output << output;
  EXPECT_TRUE(contains(output, "stopped by SIGINT while")) << output;
  EXPECT_TRUE(contains(output, "--resume evaluates and exports")) << output;
  EXPECT_FALSE(fs::exists(run / "model.pt"));
  result = tlkit_cli(common + " --resume --out " + quoted(run));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  expect_same_run(reference, run);
}

// A disk that fills while last.pt is written (here: a file-size limit, which fails the write the
// same way): one line naming the file and the reason, exit 1 (not an abort), the temporary gone,
// and the previous checkpoint kept. A temporary a killed process left is removed at the next
// start; one of a live process is not.
TEST_F(Reliability, AFullDiskDuringACheckpointIsOneClearErrorAndLeavesNoTemporary) {
  const std::string common = "train --model " + quoted(tlkit::test::tiny_model()) +
                             " --reinit --data " + quoted(data_) +
                             " --batch-size 6 --seed 5 --no-progress --epochs 2 "
                             "--schedule constant";  // a schedule a longer resume can follow
  const auto run = dir_ / "run";
  auto result = tlkit_cli(common + " --out " + quoted(run));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto last = run / "checkpoints" / "last.pt";
  const auto size = fs::file_size(last);
  const auto before = tlkit::read_file(last);

  // Left by a process that is gone, and by this (live) process.
  const auto stale = run / "checkpoints" / ".last.pt.tmp.999999999.0";
  const auto live = run / "checkpoints" / (".best.pt.tmp." + std::to_string(::getpid()) + ".0");
  tlkit::write_file_atomic(stale, "half");
  tlkit::write_file_atomic(live, "in flight");

  // Every file but the checkpoint fits (--resume: the run goes on and writes last.pt again).
  const auto limit_kb = size / 1024 / 2;
  ASSERT_GT(limit_kb, 4u) << "the checkpoint is too small to tell apart from the other files";
  result = tlkit::test::run_command(
      "bash -c \"trap '' XFSZ; ulimit -f " + std::to_string(limit_kb) + "; '" +
      tlkit::test::cli_path() + "' " + common + " --epochs 3 --resume --out " + quoted(run) + "\"");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "writing '" + last.string() + "' failed")) << result.output;
  EXPECT_TRUE(contains(result.output, "File too large")) << result.output;
  EXPECT_FALSE(contains(result.output, "terminate called")) << result.output;
  EXPECT_TRUE(contains(result.output, "removed 1 unfinished temporary file")) << result.output;
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  fs::remove(live);
  EXPECT_TRUE(temporaries(run).empty());
  EXPECT_EQ(tlkit::read_file(last), before);  // the old checkpoint is intact

  // With room again, the same resume completes.
  result = tlkit_cli(common + " --epochs 3 --resume --out " + quoted(run));
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

// A resume must continue the run in the folder: other settings (optimizer, batch size, another
// model file) or class folders that changed (shifted labels) are refused before any work, naming
// what differs; a moved model file with the same bytes and a longer run are fine.
TEST_F(Reliability, AResumeThatWouldNotContinueTheRunIsRefused) {
  const std::string common = "train --model " + quoted(tlkit::test::tiny_model()) +
                             " --reinit --data " + quoted(data_) +
                             " --batch-size 6 --seed 5 --no-progress --epochs 2 "
                             "--schedule constant";  // a schedule a longer resume can follow
  const auto run = dir_ / "run";
  ASSERT_EQ(tlkit_cli(common + " --out " + quoted(run)).exit_code, 0);
  auto result =
      tlkit_cli(common + " --epochs 3 --resume --optimizer sgd:lr=0.1 --out " + quoted(run));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "--optimizer: the run used")) << result.output;
  fs::copy_file(tlkit::test::export_model_file("--arch vgg_tiny --random-init --dropout 0",
                                               "tiny_no_dropout.pt"),
                dir_ / "other.pt");
  result = tlkit_cli(std::regex_replace(common, std::regex("--model '[^']*'"),
                                        "--model " + quoted(dir_ / "other.pt")) +
                     " --epochs 3 --resume --out " + quoted(run));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "--model: the run used")) << result.output;
  EXPECT_EQ(lines_of(run / "metrics.csv").size(), 3u);  // nothing was trained or overwritten

  for (const auto* split : {"train", "val", "test"})
    fs::rename(data_ / split / "b_middle", data_ / split / "z_middle");
  result = tlkit_cli(common + " --epochs 3 --resume --out " + quoted(run));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "[a_top, b_middle, c_bottom]")) << result.output;
  EXPECT_TRUE(contains(result.output, "[a_top, c_bottom, z_middle]")) << result.output;
  EXPECT_EQ(lines_of(run / "metrics.csv").size(), 3u);  // nothing was trained or overwritten
  // A new run on the renamed folders is fine, and so is resuming it with the model file moved.
  result = tlkit_cli(common + " --out " + quoted(run));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  fs::copy_file(tlkit::test::tiny_model(), dir_ / "moved.pt");
  result = tlkit_cli(std::regex_replace(common, std::regex("--model '[^']*'"),
                                        "--model " + quoted(dir_ / "moved.pt")) +
                     " --epochs 3 --resume --out " + quoted(run));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(lines_of(run / "metrics.csv").size(), 4u);
}

// Models and inputs a user brings that the pipeline did not make: a grey (1-channel) model is fed
// grey images and learns; a 2-channel model is refused in one line before any folder exists;
// `predict` takes folders and goes on past an unreadable file; an --out inside the data folder is
// refused (it would become a class folder).
TEST_F(Reliability, ModelsAndInputsThePipelineDidNotMake) {
  const std::string script =
      "for c, name in ((1, 'grey'), (2, 'two')):\n"
      "    torch.manual_seed(0)\n"
      "    m = torch.nn.Sequential(torch.nn.Conv2d(c, 8, 3, padding=1), torch.nn.ReLU(),\n"
      "        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(128, 10))\n"
      "    torch.jit.script(m).save('{dir}/' + name + '.pt')\n";
  const auto python = tlkit::test::run_python(script, dir_.path());
  ASSERT_EQ(python.exit_code, 0) << python.output;
  const std::string common = " --data " + quoted(data_) +
                             " --input-size 16 --optimizer adam:lr=0.01 --epochs 15 --seed 1 "
                             "--batch-size 6 --no-progress --patience 0 --out ";
  auto result =
      tlkit_cli("train --model " + quoted(dir_ / "grey.pt") + common + quoted(dir_ / "grey_run"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "takes grey images")) << result.output;
  auto grey = tlkit::model::Classifier::load(dir_ / "grey_run" / "model.pt");
  EXPECT_EQ(grey.input_channels(), 1);
  result = tlkit_cli("evaluate --model " + quoted(dir_ / "grey_run" / "model.pt") + " --data " +
                     quoted(data_));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::smatch accuracy;
  ASSERT_TRUE(std::regex_search(result.output, accuracy, std::regex("accuracy ([0-9.]+)%")));
  EXPECT_GT(std::stod(accuracy[1]), 80) << result.output;  // the bands are visible in grey too

  result = tlkit_cli("train --model " + quoted(dir_ / "two.pt") + common + quoted(dir_ / "two"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "takes images with 2 channels")) << result.output;
  EXPECT_LT(std::count(result.output.begin(), result.output.end(), '\n'), 6) << result.output;
  EXPECT_FALSE(fs::exists(dir_ / "two"));

  // predict: a folder stands for its images; an unreadable one is reported and skipped.
  tlkit::test::write_bytes(data_ / "test" / "a_top" / "broken.png", "not a png");
  result = tlkit_cli("predict --model " + quoted(dir_ / "grey_run" / "model.pt") + " -k 1 " +
                     quoted(data_ / "test"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(
      contains(result.output, "skipping '" + (data_ / "test" / "a_top" / "broken.png").string()))
      << result.output;
  EXPECT_TRUE(contains(result.output, "1 of 13 images could not be read")) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '%'), 12) << result.output;

  // An output folder inside the data: refused before anything is written.
  result = tlkit_cli("train --model " + quoted(dir_ / "grey.pt") + common + quoted(data_ / "run"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "is inside the data folder")) << result.output;
  EXPECT_FALSE(fs::exists(data_ / "run"));
}

// A file that passes the folder scan but does not decode is left out where it is loaded (as the
// scan leaves out what it catches): the run completes and names it; --strict stops instead.
// Sharded feature extraction (--nproc 2) puts the remaining rows together by index.
TEST_F(Reliability, AnImageThatFailsToDecodeIsLeftOutAndTheRunCompletes) {
  const auto broken = data_ / "train" / "a_top" / "train_3x.jpg";
  tlkit::test::write_bytes(broken, std::string("\xFF\xD8\xFF\xE0junkjunkjunk\xFF\xD9", 18));
  const std::string common = "train --model " + quoted(tlkit::test::tiny_model()) +
                             " --reinit --data " + quoted(data_) +
                             " --batch-size 6 --seed 5 --no-progress --epochs 2 --out ";
  auto result = tlkit_cli(common + quoted(dir_ / "run"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "skipping '" + broken.string() + "'")) << result.output;
  result = tlkit_cli(common + quoted(dir_ / "strict") + " --strict");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, broken.string())) << result.output;

  const std::string finetune = "finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) +
                               " --data " + quoted(data_) +
                               " --head-from classifier.6 --head-epochs 2 --epochs 1 "
                               "--batch-size 6 --seed 5 --no-progress --dist-timeout 60 --out ";
  for (const auto* nproc : {"1", "2"}) {
    if (std::string(nproc) == "2") {
      TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
    }
    const auto out = dir_ / (std::string("finetune_") + nproc);
    result = tlkit_cli(finetune + quoted(out) + " --nproc " + nproc);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const auto manifest =
        tlkit::Json::parse(tlkit::read_file(out / "features" / "train" / "manifest.json"));
    const auto sources = manifest.at("sources").as_string_list();
    EXPECT_EQ(sources.size(), 24u) << nproc;  // 25 files, one unreadable
    EXPECT_EQ(std::count(sources.begin(), sources.end(), broken.string()), 0) << nproc;
    EXPECT_TRUE(std::is_sorted(sources.begin(), sources.end())) << nproc;
  }
  // One process and two extracted the same rows.
  EXPECT_EQ(tlkit::read_file(dir_ / "finetune_1" / "features" / "train" / "labels.npy"),
            tlkit::read_file(dir_ / "finetune_2" / "features" / "train" / "labels.npy"));
}

// SIGKILL at >= 20 random moments of `tlkit finetune` (feature caching, stage 1, stage 2 epochs,
// checkpoint and snapshot writes, export), each followed by the same command with --resume (or
// afresh when no checkpoint exists yet): after every kill, each file under its final name is
// whole (checkpoints and snapshots load, the model loads, .npy/.json/.csv/.png parse), and every
// round ends with the metrics and the exported weights of the uninterrupted run. TensorBoard
// event files are append-only logs (readers stop at a torn last record) and are not checked.
TEST_F(Reliability, KilledAtRandomMomentsTheRunResumesToTheUninterruptedResult) {
  const std::string finetune = "finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) +
                               " --data " + quoted(data_) +
                               " --head-from classifier.6 --head-epochs 3 --epochs 8 "
                               "--batch-size 2 --seed 5 --no-progress --out ";
  const auto reference = dir_ / "reference";
  const auto started = std::chrono::steady_clock::now();
  auto result = tlkit_cli(finetune + quoted(reference));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto reference_model = tlkit::model::Classifier::load(reference / "model.pt");

  auto check_whole = [](const fs::path& out) {
    if (!fs::exists(out)) return;
    for (const auto& entry : fs::recursive_directory_iterator(out)) {
      if (!entry.is_regular_file()) continue;
      const auto path = entry.path();
      const auto name = path.filename().string();
      if (name.find(".tmp.") != std::string::npos) continue;  // never read under this name
      const auto ext = path.extension().string();
      try {
        if (name == "model.pt") {
          tlkit::model::Classifier::load(path);
        } else if (ext == ".pt") {
          torch::serialize::InputArchive archive;
          archive.load_from(path.string());
        } else if (ext == ".npy") {
          tlkit::read_npy(path);
        } else if (ext == ".json") {
          tlkit::Json::parse(tlkit::read_file(path));
        } else if (ext == ".png") {
          tlkit::data::read_image(path);
        } else if (ext == ".csv") {
          const auto lines = lines_of(path);
          ASSERT_FALSE(lines.empty()) << path;
          const auto commas = std::count(lines[0].begin(), lines[0].end(), ',');
          for (const auto& line : lines)
            EXPECT_EQ(std::count(line.begin(), line.end(), ','), commas) << path << ": " << line;
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << path << " is not whole: " << e.what();
      }
    }
  };

  // Where a kill landed: the last thing the run logged.
  const auto phase_of = [](const std::string& output) -> std::string {
    const auto lines = tlkit::split_trimmed(output, '\n');
    for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
      if (contains(*line, "export") || contains(*line, "candidate")) return "export";
      if (contains(*line, "stage 2")) return "stage 2";
      if (contains(*line, "stage 1") || contains(*line, "features")) return "stage 1";
    }
    return "start-up";
  };
  std::map<std::string, int> phases;
  std::mt19937 rng(20261202);
  // Mostly after the start-up (loading LibTorch, the model and the folder scan take ~0.4 s).
  std::uniform_real_distribution<double> when(0.3, std::max(0.6, 0.9 * seconds));
  int kills = 0, rounds = 0;
  while (kills < 20) {
    ++rounds;
    const auto out = dir_ / ("round_" + std::to_string(rounds));
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 60) << "round " << rounds << " never finished";
      const bool resume = fs::exists(out / "checkpoints" / "last.pt");
      char limit[32];
      std::snprintf(limit, sizeof(limit), "%.2f", when(rng));
      // After 10 kills in a round the run goes on unkilled: a resume's start-up plus the work
      // after its last checkpoint (the export, the pictures) can take longer than the kill
      // window on a loaded machine, and the round must still end.
      const std::string killer = attempt < 10 ? "timeout -s KILL " + std::string(limit) + " " : "";
      result = tlkit::test::run_command(killer + "'" + tlkit::test::cli_path() + "' " + finetune +
                                        quoted(out) + (resume ? " --resume" : ""));
      if (result.exit_code == 0) break;
      ASSERT_EQ(result.exit_code, 137) << result.output;  // killed, never failed
      ++kills;
      ++phases[phase_of(result.output)];
      check_whole(out);
    }
    EXPECT_EQ(lines_of(out / "metrics.csv"), lines_of(reference / "metrics.csv")) << out;
    EXPECT_EQ(lines_of(out / "stage1" / "metrics.csv"),
              lines_of(reference / "stage1" / "metrics.csv"))
        << out;
    EXPECT_EQ(tlkit::read_file(out / "results.md"), tlkit::read_file(reference / "results.md"));
    auto model = tlkit::model::Classifier::load(out / "model.pt");
    for (auto& [name, value] : reference_model.named_parameters())
      EXPECT_TRUE(torch::equal(value, tlkit::test::parameter(model, name))) << out << " " << name;
  }
  std::cout << kills << " kills in " << rounds << " rounds (uninterrupted run " << seconds
            << " s); last logged before the kill:";
  for (const auto& [phase, count] : phases) std::cout << " " << phase << " " << count;
  std::cout << "\n";
}
