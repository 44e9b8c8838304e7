// The pipeline commands end to end on a tiny generated image folder and the tiny exported VGG:
// `tlkit train` (artifacts, exact resume, the overfit check), `tlkit finetune` (both stages, frozen
// lower layers, the results table), `tlkit evaluate` (model and ensemble, agreeing with the run's
// own table), `tlkit predict` and `tlkit lr-find`, and the messages for bad input.

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/data/image_io.h>
#include <tlkit/model/classifier.h>
#include <tlkit/train/callbacks.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::TempDir;

namespace {

using tlkit::test::contains;
using tlkit::test::csv_column;
using tlkit::test::kClasses;
using tlkit::test::lines_of;
using tlkit::test::make_band_folder;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

// The accuracy (percent) of the results.md row whose name starts with `name`.
double table_accuracy(const fs::path& results_md, const std::string& name) {
  for (const auto& line : lines_of(results_md)) {
    if (line.rfind("| " + name, 0) != 0) continue;
    std::smatch match;
    if (std::regex_search(line, match, std::regex("\\| ([0-9.]+)% \\|")))
      return std::stod(match[1]);
  }
  ADD_FAILURE() << "no row '" << name << "' in " << tlkit::read_file(results_md);
  return -1;
}

using tlkit::test::parameter;

class PipelineCli : public ::testing::Test {
 protected:
  void SetUp() override { make_band_folder(dir_ / "bands", 8, 4, 4); }
  fs::path data() const { return dir_ / "bands"; }

  // A 2-process training run of the tiny model (without --epochs and --out).
  std::string parallel_train_args(int dist_timeout) const {
    return "train --model " + quoted(tlkit::test::tiny_model()) + " --reinit --data " +
           quoted(data()) + " --batch-size 8 --seed 3 --no-progress --dist-timeout " +
           std::to_string(dist_timeout) + " --nproc 2";
  }

  struct Stopped {
    std::string output, log;  // the script's report ("exit=N", "orphan PID"); tlkit's output
    double seconds = 0;
  };
  // Starts `args` for ever into `out`, waits for the first epoch's checkpoint, sends `signal`
  // (a kill option: -9, -STOP) to rank 1 (the launcher's second child), then reports the
  // launcher's exit code and any worker left behind.
  Stopped signal_rank_1(const std::string& args, const fs::path& out, const std::string& signal) {
    const std::string script =
        "'" + tlkit::test::cli_path() + "' " + args + " --epochs 100000 --out " + quoted(out) +
        " > " + quoted(dir_ / "log.txt") + " 2>&1 & L=$!; for i in $(seq 600); do [ -s " +
        quoted(out / "checkpoints/last.pt") + " ] && break; sleep 0.1; done; sleep 0.5; " +
        "C=$(cat /proc/$L/task/$L/children); set -- $C; kill " + signal + " $2; " +
        "wait $L; echo \"exit=$?\"; sleep 0.5; for p in $C; do kill -0 $p 2>/dev/null && echo "
        "\"orphan $p\"; done; true";
    std::ofstream(dir_ / "stop.sh") << script << "\n";
    const auto started = std::chrono::steady_clock::now();
    Stopped stopped;
    stopped.output = tlkit::test::run_command("bash " + quoted(dir_ / "stop.sh")).output;
    stopped.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stopped.log = tlkit::read_file(dir_ / "log.txt");
    return stopped;
  }

  // The stopped run goes on from its last checkpoint (one more epoch than metrics.csv shows).
  void expect_resumes(const std::string& args, const fs::path& out) {
    const auto done = lines_of(out / "metrics.csv").size();
    const auto resumed = tlkit_cli(args + " --epochs " + std::to_string(done + 1) +
                                   " --resume --out " + quoted(out));
    EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  }

  TempDir dir_;
};

}  // namespace

TEST_F(PipelineCli, TrainWritesEveryArtifactAndResumesBitIdentically) {
  const std::string common = "train --model " + quoted(tlkit::test::tiny_model()) +
                             " --reinit --data " + quoted(data()) +
                             " --batch-size 6 --optimizer adam:lr=0.01 --schedule constant " +
                             "--ema-decay 0.9 --seed 5 --no-progress";
  const auto full = dir_ / "full";
  auto result = tlkit_cli(common + " --epochs 4 --out " + quoted(full));
  ASSERT_EQ(result.exit_code, 0) << result.output;

  // Every artifact of a run.
  for (const auto* name :
       {"model.pt", "metrics.csv", "summary.json", "results.md", "curves_loss.png",
        "curves_accuracy.png", "checkpoints/last.pt", "checkpoints/best.pt"})
    EXPECT_TRUE(fs::exists(full / name)) << name;
  const auto csv = lines_of(full / "metrics.csv");
  ASSERT_EQ(csv.size(), 5u);
  EXPECT_EQ(csv[0],
            "epoch,train_loss,train_acc,lr_group0,val_loss,val_acc,ema_val_loss,ema_val_acc");
  const auto summary = tlkit::Json::parse(tlkit::read_file(full / "summary.json"));
  EXPECT_EQ(summary.at("command").as_string(), "train");
  EXPECT_EQ(summary.at("split").as_string(), "test");
  EXPECT_EQ(summary.at("history").as_array().size(), 4u);
  EXPECT_GE(summary.at("results").as_array().size(), 3u);  // last, best, EMA
  std::string events;
  for (const auto& entry : fs::directory_iterator(full))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      events = entry.path().string();
  ASSERT_FALSE(events.empty());
  const auto scalars = tlkit::test::run_command(
      tlkit::test::torch_python() + " " +
      (tlkit::test::source_dir() / "scripts/read_tfevents.py").string() + " '" + events + "'");
  ASSERT_EQ(scalars.exit_code, 0) << scalars.output;
  for (const auto* tag :
       {"train/loss,4,", "train/acc,4,", "val/loss,4,", "val/acc,4,", "lr/group0,4,"})
    EXPECT_TRUE(contains(scalars.output, tag)) << tag << "\n" << scalars.output;

  // The exported model knows the folder's classes and runs in Python-compatible TorchScript.
  auto model = tlkit::model::Classifier::load(full / "model.pt");
  EXPECT_EQ(model.class_names(), kClasses);

  // Interrupted after 2 epochs, resumed to 4: the same history and the same weights.
  const auto split = dir_ / "split";
  ASSERT_EQ(tlkit_cli(common + " --epochs 2 --out " + quoted(split)).exit_code, 0);
  result = tlkit_cli(common + " --epochs 4 --resume --out " + quoted(split));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(lines_of(split / "metrics.csv"), csv);
  auto resumed = tlkit::model::Classifier::load(split / "model.pt");
  for (auto& [name, value] : model.named_parameters())
    EXPECT_TRUE(torch::equal(value, parameter(resumed, name))) << name;
}

TEST_F(PipelineCli, OverfitBatchesReachesFullAccuracyWithoutDropout) {
  const auto out = dir_ / "overfit";
  const auto result =
      tlkit_cli("train --model " + quoted(tlkit::test::tiny_model()) + " --reinit --data " +
                quoted(data()) + " --batch-size 6 --overfit-batches 1 --epochs 150 " +
                "--optimizer adam:lr=0.02 --schedule constant --ema-decay 0 --no-progress --out " +
                quoted(out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "overfit check passed: 100.0% on the 1 batch(es)"))
      << result.output;
  // No early stopping in the check: every epoch ran.
  EXPECT_EQ(lines_of(out / "metrics.csv").size(), 151u);
}

TEST_F(PipelineCli, FinetuneRunsBothStagesAndEvaluateAgreesWithItsTable) {
  const auto pretrained = tlkit::test::tiny_model();
  const auto out = dir_ / "ft";
  // vgg_tiny: features.0, features.3, classifier.0, classifier.3, classifier.6 carry parameters.
  const auto result =
      tlkit_cli("finetune --no-cv --model " + quoted(pretrained) + " --data " + quoted(data()) + " --out " +
                quoted(out) + " --head-solver gradient --head-epochs 6 --epochs 4 --batch-size 6 " +
                "--optimizer momentum:lr=0.02 --schedule restarts:T_0=2 --ema-decay 0.8 " +
                "--head-from classifier.6 --unfreeze-from classifier.3 --seed 2 --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;

  // Stage 1 ran on cached features, stage 2 left snapshots at the ends of the two cycles.
  for (const auto* split : {"train", "val", "test"})
    for (const auto* file : {"features.npy", "labels.npy", "manifest.json"})
      EXPECT_TRUE(fs::exists(out / "features" / split / file)) << split << "/" << file;
  EXPECT_EQ(lines_of(out / "stage1" / "metrics.csv").size(), 7u);
  EXPECT_TRUE(fs::exists(out / "snapshots" / "snapshot_1.pt"));
  EXPECT_TRUE(fs::exists(out / "snapshots" / "snapshot_2.pt"));
  EXPECT_EQ(
      lines_of(out / "metrics.csv")[0],
      "epoch,train_loss,train_acc,lr_group0,lr_group1,val_loss,val_acc,ema_val_loss,ema_val_acc");

  // The table has all four kinds of model besides stage 1.
  const auto results = out / "results.md";
  for (const auto* row :
       {"feature extraction (stage 1 head)", "fine-tuning: last", "fine-tuning: best (epoch",
        "fine-tuning: EMA", "fine-tuning: snapshot ensemble (2)"})
    EXPECT_GE(table_accuracy(results, row), 0) << row;

  // Lower layers frozen: features.* and classifier.0 are the pretrained ones, bit for bit; the
  // unfrozen classifier.3 moved; the head has the folder's 3 classes.
  auto before = tlkit::model::Classifier::load(pretrained);
  auto after = tlkit::model::Classifier::load(out / "model.pt");
  for (const auto* name : {"features.0.weight", "features.3.bias", "classifier.0.weight"})
    EXPECT_TRUE(torch::equal(parameter(before, name), parameter(after, name))) << name;
  // Stage 2's weights (the exported model may be the stage-1 head, when it is best on val).
  const auto snapshot = tlkit::train::load_state(out / "snapshots" / "snapshot_2.pt");
  const auto in_snapshot = [&snapshot](const std::string& name) {
    for (const auto& [key, value] : snapshot)
      if (key == name) return value;
    ADD_FAILURE() << "no " << name << " in the snapshot";
    return torch::Tensor();
  };
  for (const auto* name : {"features.0.weight", "features.3.bias", "classifier.0.weight"})
    EXPECT_TRUE(torch::equal(parameter(before, name), in_snapshot(name))) << name;
  EXPECT_FALSE(
      torch::equal(parameter(before, "classifier.3.weight"), in_snapshot("classifier.3.weight")));
  EXPECT_EQ(after.num_classes(), 3);
  EXPECT_EQ(after.class_names(), kClasses);

  // evaluate on the exported model and on the ensemble reproduces the run's own table.
  const auto summary = tlkit::Json::parse(tlkit::read_file(out / "summary.json"));
  const auto exported_from = summary.at("exported_from").as_string();
  const auto row = exported_from == "best"           ? std::string("fine-tuning: best")
                   : exported_from == "stage 1 head" ? std::string("feature extraction")
                                                     : "fine-tuning: " + exported_from;
  auto evaluation =
      tlkit_cli("evaluate --model " + quoted(out / "model.pt") + " --data " + quoted(data()));
  ASSERT_EQ(evaluation.exit_code, 0) << evaluation.output;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(evaluation.output, match, std::regex("accuracy ([0-9.]+)%")))
      << evaluation.output;
  EXPECT_NEAR(std::stod(match[1]), table_accuracy(results, row), 0.01) << evaluation.output;
  EXPECT_TRUE(contains(evaluation.output, "test split, 12 images")) << evaluation.output;
  EXPECT_TRUE(contains(evaluation.output, "b_middle")) << evaluation.output;
  EXPECT_TRUE(contains(evaluation.output, "confusion matrix")) << evaluation.output;

  // Every metric, the same as JSON, and in the run's results.md and summary.json for the
  // exported model; --top 5 is clamped to the 3 classes.
  evaluation = tlkit_cli("evaluate --model " + quoted(out / "model.pt") + " --data " +
                         quoted(data()) + " --top 5 --json " + quoted(dir_ / "metrics.json"));
  ASSERT_EQ(evaluation.exit_code, 0) << evaluation.output;
  EXPECT_TRUE(contains(evaluation.output, "top-3 is reported")) << evaluation.output;
  EXPECT_TRUE(contains(evaluation.output, "macro F1")) << evaluation.output;
  const auto metrics = tlkit::Json::parse(tlkit::read_file(dir_ / "metrics.json"));
  EXPECT_NEAR(100 * metrics.at("accuracy").as_double(), table_accuracy(results, row), 0.01);
  EXPECT_DOUBLE_EQ(metrics.at("top3").as_double(), 1.0);
  for (const auto* key : {"macro_f1", "balanced_accuracy", "nll", "ece"})
    EXPECT_TRUE(metrics.contains(key)) << key;
  ASSERT_EQ(metrics.at("per_class").size(), 3u);
  EXPECT_EQ(metrics.at("per_class").at(1).at("name").as_string(), "b_middle");
  EXPECT_EQ(metrics.at("per_class").at(1).at("support").as_int(), 4);
  const auto report = tlkit::read_file(results);
  EXPECT_TRUE(contains(report, "## The exported model on the test split")) << report;
  EXPECT_TRUE(contains(report, "| b_middle | ")) << report;
  EXPECT_NEAR(summary.at("exported_metrics").at("macro_f1").as_double(),
              metrics.at("macro_f1").as_double(), 1e-9);

  evaluation = tlkit_cli("evaluate --ensemble " + quoted(out) + " --data " + quoted(data()));
  ASSERT_EQ(evaluation.exit_code, 0) << evaluation.output;
  ASSERT_TRUE(std::regex_search(evaluation.output, match, std::regex("accuracy ([0-9.]+)%")))
      << evaluation.output;
  EXPECT_NEAR(std::stod(match[1]), table_accuracy(results, "fine-tuning: snapshot ensemble"), 0.01)
      << evaluation.output;
  EXPECT_TRUE(contains(evaluation.output, "ensemble of 2 snapshots")) << evaluation.output;
  EXPECT_TRUE(contains(evaluation.output, "top-3 100.00%")) << evaluation.output;

  // predict: top-k with the class names, probabilities summing to at most 100%.
  const auto image = data() / "test" / "c_bottom" / "test_0.png";
  const auto prediction =
      tlkit_cli("predict --model " + quoted(out / "model.pt") + " -k 2 " + quoted(image));
  ASSERT_EQ(prediction.exit_code, 0) << prediction.output;
  EXPECT_TRUE(std::regex_search(prediction.output, std::regex("1\\. [abc]_\\w+ +[0-9.]+%")))
      << prediction.output;
  EXPECT_TRUE(std::regex_search(prediction.output, std::regex("2\\. [abc]_\\w+ +[0-9.]+%")))
      << prediction.output;
  EXPECT_FALSE(contains(prediction.output, "3. ")) << prediction.output;

  // A second finetune into the same folder reuses the cached features.
  const auto again =
      tlkit_cli("finetune --no-cv --model " + quoted(pretrained) + " --data " + quoted(data()) + " --out " +
                quoted(out) + " --head-epochs 1 --epochs 1 --batch-size 6 --no-progress");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "reusing cached train features")) << again.output;
}

TEST_F(PipelineCli, FinetuneHeadFromRetrainsTheUpperLayersOnCachedFeatures) {
  const auto pretrained = tlkit::test::tiny_model();
  const auto out = dir_ / "ft_conv";
  // The head is features.3 (a convolution) and everything above it: stage 1 trains it on the
  // cached output of features.2 (4 × 8 × 8 per image); stage 2, unfrozen from the head, keeps
  // features.0 frozen.
  const auto result = tlkit_cli(
      "finetune --no-cv --model " + quoted(pretrained) + " --data " + quoted(data()) + " --out " +
      quoted(out) + " --head-from features.3 --head-epochs 30 --head-batch-size 6 " +
      "--head-optimizer adam:lr=0.01 --epochs 3 --batch-size 6 --optimizer adam:lr=0.003 " +
      "--schedule cosine --lr-decay 0.5 --unfreeze-from features.3 --seed 3 --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto manifest = tlkit::Json::parse(
      tlkit::read_file(out / "features" / "features.2" / "train" / "manifest.json"));
  EXPECT_EQ(manifest.at("layer").as_string(), "features.2");
  EXPECT_TRUE(contains(result.output, "group features.3 lr 0.003")) << result.output;
  EXPECT_TRUE(contains(result.output, "group classifier.6 lr 0.003")) << result.output;
  // The bands are learnable from re-trained upper layers: stage 1 is far above chance (33%).
  std::cout << "[ stage 1 ] "
            << table_accuracy(out / "results.md", "feature extraction (stage 1 head)") << "%\n";
  EXPECT_GE(table_accuracy(out / "results.md", "feature extraction (stage 1 head)"), 75.0)
      << tlkit::read_file(out / "results.md");
  auto before = tlkit::model::Classifier::load(pretrained);
  auto after = tlkit::model::Classifier::load(out / "model.pt");
  EXPECT_TRUE(
      torch::equal(parameter(before, "features.0.weight"), parameter(after, "features.0.weight")));
  for (const auto* name : {"features.3.weight", "classifier.0.weight", "classifier.3.weight"})
    EXPECT_FALSE(torch::equal(parameter(before, name), parameter(after, name))) << name;

  // Each layer's features have their own cache: the classification head's in features/<split>,
  // the conv head's in features/features.2/<split>, both kept.
  const auto again = tlkit_cli(
      "finetune --no-cv --model " + quoted(pretrained) + " --data " + quoted(data()) + " --out " +
      quoted(out) + " --head-from classifier.6 --head-epochs 1 --epochs 1 --batch-size 6 " +
      "--no-progress");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(tlkit::Json::parse(tlkit::read_file(out / "features" / "train" / "manifest.json"))
                .at("layer")
                .as_string(),
            "classifier.4");
  EXPECT_EQ(tlkit::Json::parse(
                tlkit::read_file(out / "features" / "features.2" / "train" / "manifest.json"))
                .at("layer")
                .as_string(),
            "features.2");

  // --head-from auto (the default) tries the classification layer, the whole classifier and the
  // last conv block; with 4 val images per class every choice uses 5-fold cross-validation over
  // the 36 train + val images.
  const auto automatic =
      tlkit_cli("finetune --model " + quoted(pretrained) + " --data " + quoted(data()) + " --out " +
                quoted(dir_ / "auto") + " --epochs 1 --seed 3 --no-progress");
  ASSERT_EQ(automatic.exit_code, 0) << automatic.output;
  // Every candidate is tried, or dropped by stage 1's plan when its measured cost is over the
  // budget (a loaded machine); the plan is logged either way.
  EXPECT_TRUE(contains(automatic.output, "stage 1 plan: classifier.6")) << automatic.output;
  for (const auto* layer : {"classifier.6", "classifier.0", "features.3"})
    EXPECT_TRUE(contains(automatic.output, std::string("head-from auto: ") + layer) ||
                contains(automatic.output, std::string(layer) + " dropped"))
        << layer << "\n"
        << automatic.output;
  EXPECT_TRUE(contains(automatic.output, "5-fold cross-validation on 36 images"))
      << automatic.output;
  EXPECT_TRUE(contains(automatic.output, "the head starts at")) << automatic.output;
  EXPECT_TRUE(contains(tlkit::read_file(dir_ / "auto" / "results.md"),
                       "feature extraction (stage 1 head), from "));

  // A head that starts at the first layer or at no layer is refused with the reason.
  auto bad = tlkit_cli("finetune --no-cv --model " + quoted(pretrained) + " --data " + quoted(data()) +
                       " --out " + quoted(dir_ / "bad") + " --head-from features.0 --no-progress");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, "first layer")) << bad.output;
  bad = tlkit_cli("finetune --no-cv --model " + quoted(pretrained) + " --data " + quoted(data()) +
                  " --out " + quoted(dir_ / "bad") + " --head-from classifier.9 --no-progress");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, "no layer named 'classifier.9'")) << bad.output;
}

// A head whose first fully connected layer has no bias cannot take the feature standardisation
// folded in (the mean needs a bias): it trains on the raw features and still learns the bands.
TEST_F(PipelineCli, AHeadWithoutABiasTrainsOnRawFeatures) {
  const std::string script =
      "torch.manual_seed(0)\n"
      "m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),\n"
      "    torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(128, 16, "
      "bias=False),\n"
      "    torch.nn.ReLU(), torch.nn.Linear(16, 10))\n"
      "torch.jit.script(m).save('{dir}/nobias.pt')\n";
  const auto python = tlkit::test::run_python(script, dir_.path());
  ASSERT_EQ(python.exit_code, 0) << python.output;
  const auto out = dir_ / "nobias_run";
  const auto result = tlkit_cli("finetune --no-cv --model " + quoted(dir_ / "nobias.pt") + " --data " +
                                quoted(data()) + " --input-size 16 --head-from 4 --epochs 1 " +
                                "--seed 2 --no-progress --out " + quoted(out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_FALSE(contains(result.output, "standardised")) << result.output;
  EXPECT_GE(table_accuracy(out / "results.md", "feature extraction (stage 1 head)"), 75.0)
      << tlkit::read_file(out / "results.md");
}

// --baseline scratch: the same network from random weights with stage 2's budget, at 10x stage
// 2's lr for SGD (torch has no default), in RUN/baseline, reported beside and never exported;
// --resume of the finished run gives the same row.
TEST_F(PipelineCli, BaselineFromScratchIsReportedBesideAndNeverExported) {
  const auto out = dir_ / "baseline_run";
  const std::string args = "finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                           quoted(data()) + " --out " + quoted(out) +
                           " --head-from classifier.6 --epochs 3 --batch-size 6 "
                           "--optimizer momentum:lr=0.02 --baseline scratch --seed 4 --no-progress";
  const auto result = tlkit_cli(args);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output,
                       "baseline: the same network from random weights, every "
                       "layer, momentum:lr=0.2"))
      << result.output;
  EXPECT_TRUE(contains(result.output, "baseline: from scratch ")) << result.output;
  EXPECT_EQ(lines_of(out / "baseline" / "metrics.csv").size(), 4u);
  EXPECT_TRUE(fs::exists(out / "baseline" / "checkpoints" / "last.pt"));
  std::string baseline_row;
  int exported = 0;
  for (const auto& line : lines_of(out / "results.md")) {
    if (line.rfind("| baseline: from scratch, ", 0) == 0) baseline_row = line;
    exported += contains(line, "(exported)");
  }
  ASSERT_FALSE(baseline_row.empty()) << tlkit::read_file(out / "results.md");
  EXPECT_TRUE(contains(baseline_row, "(not exported)")) << baseline_row;
  EXPECT_FALSE(contains(baseline_row, "(exported)")) << baseline_row;
  EXPECT_EQ(exported, 1);
  const auto summary = tlkit::Json::parse(tlkit::read_file(out / "summary.json"));
  EXPECT_EQ(summary.at("config").at("baseline").as_string(), "scratch");
  // report.html is rewritten with results.md: the baseline row is on the page too.
  const auto page = tlkit::read_file(out / "report.html");
  EXPECT_TRUE(contains(page, "<td>baseline: from scratch, ")) << page;

  // Resumed after the end: nothing trains again, the same baseline row.
  const auto resumed = tlkit_cli(args + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  std::string again;
  for (const auto& line : lines_of(out / "results.md"))
    if (line.rfind("| baseline: from scratch, ", 0) == 0) again = line;
  EXPECT_EQ(again, baseline_row);

  const auto bad = tlkit_cli("finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                             quoted(data()) + " --out " + quoted(dir_ / "bad") +
                             " --baseline random --no-progress");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, "--baseline must be scratch or none")) << bad.output;
}

TEST_F(PipelineCli, LrFindWritesTheCurveAndASuggestion) {
  const auto out = dir_ / "lr";
  const auto result =
      tlkit_cli("lr-find --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                quoted(data()) + " --out " + quoted(out) + " --steps 40 --batch-size 6");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(result.output, match, std::regex("suggested lr ([0-9.e+-]+)")))
      << result.output;
  const double suggested = std::stod(match[1]);
  EXPECT_GE(suggested, 1e-7);
  EXPECT_LE(suggested, 10);
  const auto csv = lines_of(out / "lr_find.csv");
  ASSERT_GE(csv.size(), 11u);
  ASSERT_LE(csv.size(), 41u);
  EXPECT_EQ(csv[0], "lr,loss,smoothed_loss");
  EXPECT_TRUE(fs::exists(out / "lr_find.png"));
}

TEST_F(PipelineCli, BadInputGivesOneClearMessage) {
  const auto model = quoted(tlkit::test::tiny_model());
  auto result = tlkit_cli("train --model " + model + " --data " + quoted(dir_ / "nowhere") +
                          " --out " + quoted(dir_ / "r"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "nowhere")) << result.output;

  result = tlkit_cli("finetune --no-cv --model " + model + " --data " + quoted(data()) + " --out " +
                     quoted(dir_ / "r") + " --resume --no-progress --head-epochs 1");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "cannot resume")) << result.output;

  result = tlkit_cli("finetune --no-cv --model " + model + " --data " + quoted(data()) + " --out " +
                     quoted(dir_ / "r") + " --optimizer adam:lr=-1 --no-progress --head-epochs 1");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "lr")) << result.output;

  result = tlkit_cli("train --model " + model + " --data " + quoted(data()));
  EXPECT_EQ(result.exit_code, 2) << result.output;  // --out missing: a usage error

  result =
      tlkit_cli("evaluate --model " + quoted(dir_ / "missing.pt") + " --data " + quoted(data()));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "missing.pt")) << result.output;

  result = tlkit_cli("evaluate --ensemble " + quoted(dir_.path()) + " --data " + quoted(data()));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "snapshots")) << result.output;
}

// ------------------------------------------------------------------ data parallelism (--nproc)
TEST_F(PipelineCli, TwoProcessesFollowOneProcessAndResumeExactly) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  // No dropout: 2 processes x half the batch then follow 1 process x the batch up to float
  // rounding (the ranks' dropout masks cannot match one process's).
  const auto model = tlkit::test::export_model_file("--arch vgg_tiny --random-init --dropout 0",
                                                    "tiny_no_dropout.pt");
  const std::string common = "train --model " + quoted(model) + " --reinit --data " +
                             quoted(data()) +
                             " --batch-size 8 --no-augment --optimizer sgd:lr=0.05,momentum=0.9 "
                             "--schedule constant --seed 3 --no-progress --dist-timeout 60";
  const auto one = dir_ / "one", two = dir_ / "two", resumed = dir_ / "resumed";
  auto result = tlkit_cli(common + " --epochs 4 --out " + quoted(one));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  result = tlkit_cli(common + " --epochs 4 --nproc 2 --out " + quoted(two));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "starting 2 processes")) << result.output;
  for (const auto* column : {"train_loss", "val_loss", "val_acc"}) {
    const auto a = csv_column(one / "metrics.csv", column);
    const auto b = csv_column(two / "metrics.csv", column);
    ASSERT_EQ(a.size(), 4u) << column;
    ASSERT_EQ(b.size(), 4u) << column;
    for (size_t e = 0; e < a.size(); ++e) EXPECT_NEAR(a[e], b[e], 1e-4) << column << " " << e;
  }
  EXPECT_FALSE(csv_column(two / "metrics.csv", "allreduce_s").empty());
  // Negative control: one process at the per-rank batch (what the ranks would follow without
  // averaging their gradients) is told apart by the same comparison.
  result = tlkit_cli(std::regex_replace(common, std::regex("--batch-size 8"), "--batch-size 4") +
                     " --epochs 4 --out " + quoted(dir_ / "control"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto control = csv_column(dir_ / "control" / "metrics.csv", "train_loss");
  const auto parallel = csv_column(two / "metrics.csv", "train_loss");
  ASSERT_EQ(control.size(), parallel.size());
  double largest = 0;
  for (size_t e = 0; e < control.size(); ++e)
    largest = std::max(largest, std::abs(control[e] - parallel[e]));
  EXPECT_GT(largest, 1e-3);

  // Resumed with 2 processes after 2 epochs: the same run as the uninterrupted one, exactly.
  result = tlkit_cli(common + " --epochs 2 --nproc 2 --out " + quoted(resumed));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  result = tlkit_cli(common + " --epochs 4 --nproc 2 --resume --out " + quoted(resumed));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const auto* column : {"train_loss", "val_loss"})
    EXPECT_EQ(csv_column(two / "metrics.csv", column), csv_column(resumed / "metrics.csv", column))
        << column;

  // Bad combinations are usage errors.
  result = tlkit_cli(common + " --epochs 1 --nproc 0 --out " + quoted(dir_ / "bad"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  result = tlkit_cli(common + " --epochs 1 --nproc 3 --out " + quoted(dir_ / "bad"));
  EXPECT_NE(result.exit_code, 0) << result.output;  // batch 8 does not split over 3
  EXPECT_TRUE(contains(result.output, "multiple of 3")) << result.output;
}

TEST_F(PipelineCli, AKilledWorkerEndsEveryRankAndLeavesTheRunResumable) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  const auto out = dir_ / "killed";
  const auto args = parallel_train_args(30);
  const auto stopped = signal_rank_1(args, out, "-9");
  EXPECT_TRUE(contains(stopped.output, "exit=137")) << stopped.output << stopped.log;
  EXPECT_FALSE(contains(stopped.output, "orphan")) << stopped.output;
  EXPECT_TRUE(contains(stopped.log, "rank 1 of 2")) << stopped.log;
  EXPECT_TRUE(contains(stopped.log, "SIGKILL")) << stopped.log;
  EXPECT_TRUE(contains(stopped.log, "--resume")) << stopped.log;
  EXPECT_LT(stopped.seconds, 60) << stopped.log;
  expect_resumes(args, out);
}

// A rank that hangs (SIGSTOP after the first checkpoint): the others give up after
// --dist-timeout, the launcher names the rank that was still running, stops it, leaves no
// process behind and the run resumes.
TEST_F(PipelineCli, AHungWorkerEndsEveryRankAfterTheTimeout) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  const auto out = dir_ / "hung";
  const auto args = parallel_train_args(3);
  const auto stopped = signal_rank_1(args, out, "-STOP");
  EXPECT_TRUE(contains(stopped.output, "exit=")) << stopped.output;
  EXPECT_FALSE(contains(stopped.output, "exit=0")) << stopped.output << stopped.log;
  EXPECT_FALSE(contains(stopped.output, "orphan")) << stopped.output;
  EXPECT_TRUE(contains(stopped.log, "within 3 s")) << stopped.log;  // rank 0's collective timed out
  EXPECT_TRUE(contains(stopped.log, "rank 1 was still running")) << stopped.log;
  EXPECT_TRUE(contains(stopped.log, "--resume")) << stopped.log;
  EXPECT_LT(stopped.seconds, 60) << stopped.log;
  expect_resumes(args, out);
}

// Built without data parallelism (TLKIT_WITH_DISTRIBUTED=OFF): --nproc 2, or a rank a launcher
// started, is one clear error before anything trains (no worker is started).
TEST_F(PipelineCli, WithoutDataParallelismSeveralProcessesAreOneClearError) {
  if (tlkit::test::data_parallel_built()) GTEST_SKIP() << "this tlkit has data parallelism";
  const auto args = parallel_train_args(30) + " --epochs 1 --out ";
  auto result = tlkit_cli(args + quoted(dir_ / "nproc"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "error: --nproc 2 needs data parallelism, but this tlkit "
                                      "was built without it")) << result.output;
  EXPECT_TRUE(contains(result.output, "TLKIT_WITH_DISTRIBUTED=ON")) << result.output;
  EXPECT_FALSE(contains(result.output, "starting 2 processes")) << result.output;
  EXPECT_FALSE(fs::exists(dir_ / "nproc" / "metrics.csv"));

  // As rank 0 of 2 that torchrun started (its arguments have no --nproc).
  auto launched = parallel_train_args(30);
  launched.erase(launched.rfind(" --nproc 2"));
  result = tlkit::test::run_command(
      "WORLD_SIZE=2 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 '" +
      tlkit::test::cli_path() + "' " + launched + " --epochs 1 --out " +
      quoted(dir_ / "launched") + " 2>&1");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "rank 0 of a group of 2 processes (WORLD_SIZE=2) needs data "
                                      "parallelism")) << result.output;
  EXPECT_FALSE(fs::exists(dir_ / "launched" / "metrics.csv"));
}

// The same binary started by torchrun (its agent hosts the store: every rank is a client) runs
// the run one process would.
TEST_F(PipelineCli, TorchrunStartsTheSameRun) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  const auto torchrun = tlkit::test::run_command("command -v torchrun");
  if (torchrun.exit_code != 0) GTEST_SKIP() << "torchrun is not installed";
  const auto model = tlkit::test::export_model_file("--arch vgg_tiny --random-init --dropout 0",
                                                    "tiny_no_dropout.pt");
  const std::string common = "train --model " + quoted(model) + " --reinit --data " +
                             quoted(data()) +
                             " --batch-size 8 --no-augment --optimizer sgd:lr=0.05,momentum=0.9 "
                             "--schedule constant --seed 3 --no-progress --epochs 3";
  auto result = tlkit_cli(common + " --out " + quoted(dir_ / "one"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  result = tlkit::test::run_command(
      "torchrun --standalone --nproc_per_node 2 --redirects 1 --tee 1 --no_python '" +
      tlkit::test::cli_path() + "' " + common + " --dist-timeout 60 --out " +
      quoted(dir_ / "torchrun") + " 2>&1");
  // torch 2.4+'s launcher hosts its store with libuv, hard-wired; Debian's torch 2.6 has none, so
  // its torchrun fails before it starts any worker.
  if (result.exit_code != 0 && contains(result.output, "build without libuv support"))
    GTEST_SKIP() << "this torchrun cannot start: its torch was built without libuv";
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "rank 0 of 2")) << result.output;
  for (const auto* column : {"train_loss", "val_loss"}) {
    const auto a = csv_column(dir_ / "one" / "metrics.csv", column);
    const auto b = csv_column(dir_ / "torchrun" / "metrics.csv", column);
    ASSERT_EQ(a.size(), 3u) << column;
    ASSERT_EQ(b.size(), 3u) << column;
    for (size_t e = 0; e < a.size(); ++e) EXPECT_NEAR(a[e], b[e], 1e-4) << column << " " << e;
  }
}
