// The run flow through the CLI: the resolved config written to the run folder and repeated by
// --config, the one monitored metric, torch's default lr when a spec gives none, feature caches
// keyed on the exact file list, a rerun into the same folder not inheriting the old run, and
// checkpoints holding the weights once.

#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/data/image_io.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::TempDir;
using tlkit::test::tlkit_cli;

namespace {

// root/<class>/*.png (no val/ or test/ folder: the val split comes from --val-split and the seed).
void make_flat_folder(const fs::path& root, int per_class) {
  torch::manual_seed(11);
  const std::vector<std::string> classes{"left", "middle", "right"};
  for (size_t c = 0; c < classes.size(); ++c) {
    fs::create_directories(root / classes[c]);
    for (int i = 0; i < per_class; ++i) {
      auto image = torch::randint(0, 70, {16, 16, 3}, torch::kLong);
      image.slice(1, 5 * static_cast<int64_t>(c), 5 * static_cast<int64_t>(c) + 5) += 150;
      tlkit::data::write_image(root / classes[c] / ("img_" + std::to_string(i) + ".png"),
                               image.to(torch::kByte));
    }
  }
}

tlkit::Json json_of(const fs::path& file) { return tlkit::Json::parse(tlkit::read_file(file)); }

std::set<std::string> sources_of(const fs::path& features_dir) {
  const auto list = json_of(features_dir / "manifest.json").at("sources").as_string_list();
  return {list.begin(), list.end()};
}

class RunFlow : public ::testing::Test {
 protected:
  void SetUp() override { make_flat_folder(data_, 8); }
  std::string finetune(const fs::path& out, const std::string& extra) const {
    return "finetune --no-cv --model " + quoted(tlkit::test::tiny_model()) + " --data " + quoted(data_) +
           " --out " + quoted(out) +
           " --val-split 0.25 --head-from classifier.6 --head-epochs 3 --epochs 2 --batch-size 6 "
           "--no-progress " +
           extra;
  }
  TempDir dir_;
  fs::path data_ = dir_ / "flat";
};

}  // namespace

// Another --seed gives another train/val split of the same size: the cached features must not be
// reused (stage 1 would train on images that stage 2 validates on), and the log says why.
TEST_F(RunFlow, AnotherSeedDoesNotReuseTheOldSplitsFeatures) {
  const auto out = dir_ / "run";
  auto first = tlkit_cli(finetune(out, "--seed 1"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto train1 = sources_of(out / "features" / "train");
  const auto val1 = sources_of(out / "features" / "val");
  auto second = tlkit_cli(finetune(out, "--seed 2"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_FALSE(contains(second.output, "reusing cached train features")) << second.output;
  EXPECT_TRUE(contains(second.output, "other image files")) << second.output;
  const auto train2 = sources_of(out / "features" / "train");
  const auto val2 = sources_of(out / "features" / "val");
  EXPECT_NE(train1, train2);
  for (const auto& file : val2)
    EXPECT_EQ(train2.count(file), 0u) << file << " is in both train and val";
  // The same seed again: the same split, the cache is reused.
  auto third = tlkit_cli(finetune(out, "--seed 2"));
  ASSERT_EQ(third.exit_code, 0) << third.output;
  EXPECT_TRUE(contains(third.output, "reusing cached train features")) << third.output;
  // A renamed class folder: other class names, extracted again.
  fs::rename(data_ / "right", data_ / "zright");
  auto renamed = tlkit_cli(finetune(out, "--seed 2"));
  ASSERT_EQ(renamed.exit_code, 0) << renamed.output;
  EXPECT_FALSE(contains(renamed.output, "reusing cached train features")) << renamed.output;
  const auto names =
      json_of(out / "features" / "train" / "manifest.json").at("class_names").as_string_list();
  EXPECT_EQ(names.back(), "zright");
}

// config.json records the resolved run; --config repeats it exactly (same metrics, same weights),
// flags given beside it override it.
TEST_F(RunFlow, ConfigFileRepeatsARun) {
  const auto first = dir_ / "first";
  auto result = tlkit_cli(
      "train --model " + quoted(tlkit::test::tiny_model()) + " --reinit --data " + quoted(data_) +
      " --out " + quoted(first) + " --val-split 0.25 --epochs 3 --batch-size 6 " +
      "--optimizer adam --schedule step:step_size=2 --monitor val_acc --seed 4 --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto config = json_of(first / "config.json");
  EXPECT_EQ(config.at("command").as_string(), "train");
  EXPECT_EQ(config.at("fit").at("optimizer").as_string(), "adam");
  EXPECT_EQ(config.at("fit").at("monitor").as_string(), "val_acc");
  EXPECT_EQ(config.at("data").at("seed").as_int(), 4);
  EXPECT_TRUE(config.at("reinitialize").as_bool());
  // summary.json carries the same resolved config.
  EXPECT_EQ(json_of(first / "summary.json").at("config").dump(), config.dump());

  const auto second = dir_ / "second";
  result =
      tlkit_cli("train --config " + quoted(first / "config.json") + " --out " + quoted(second));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(tlkit::read_file(first / "metrics.csv"), tlkit::read_file(second / "metrics.csv"));
  auto repeated = json_of(second / "config.json");
  EXPECT_EQ(repeated.at("out").as_string(), second.string());
  repeated["out"] = first.string();
  EXPECT_EQ(repeated.dump(), config.dump());

  // A flag beside --config overrides it; a bad config is one clear message.
  result = tlkit_cli("train --config " + quoted(first / "config.json") + " --out " +
                     quoted(dir_ / "third") + " --epochs 1");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(json_of(dir_ / "third" / "config.json").at("fit").at("epochs").as_int(), 1);
  tlkit::write_file_atomic(dir_ / "bad.json", "{\"command\": \"train\", \"fit\": {\"epoch\": 3}}");
  result = tlkit_cli("train --config " + quoted(dir_ / "bad.json") + " --out " +
                     quoted(dir_ / "fourth"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "unknown setting 'fit.epoch'")) << result.output;
  EXPECT_FALSE(fs::exists(dir_ / "fourth"));
  result = tlkit_cli("finetune --config " + quoted(first / "config.json"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
}

// `--optimizer adam` without an lr trains at torch's 1e-3 (it trained at 0.01).
TEST_F(RunFlow, AnOptimizerWithoutLrUsesTorchsDefault) {
  const auto out = dir_ / "adam";
  const auto result =
      tlkit_cli("train --model " + quoted(tlkit::test::tiny_model()) + " --data " + quoted(data_) +
                " --out " + quoted(out) + " --val-split 0.25 --epochs 1 --batch-size 6 " +
                "--optimizer adam --schedule constant --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream csv(out / "metrics.csv");
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  ASSERT_TRUE(contains(header, "lr_group0")) << header;
  EXPECT_TRUE(contains(row, ",0.001,")) << header << "\n" << row;
}

// A fresh run into an old run folder starts clean: no snapshots of the old run in its ensemble.
// The checkpoint holds the weights once: with plain SGD and no EMA, last.pt is about the size of
// model.pt (it was twice that and more, with a copy of the best weights inside), and best.pt holds
// weights only.
TEST_F(RunFlow, ARerunStartsCleanAndCheckpointsHoldTheWeightsOnce) {
  const auto out = dir_ / "run";
  auto result =
      tlkit_cli("train --model " + quoted(tlkit::test::tiny_model()) + " --data " + quoted(data_) +
                " --out " + quoted(out) + " --val-split 0.25 --epochs 4 --batch-size 6 " +
                "--schedule restarts:T_0=1 --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(fs::exists(out / "snapshots"));
  EXPECT_TRUE(contains(tlkit::read_file(out / "results.md"), "snapshot ensemble"));
  result = tlkit_cli("train --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                     quoted(data_) + " --out " + quoted(out) +
                     " --val-split 0.25 --epochs 2 --batch-size 6 --optimizer sgd:lr=0.01 " +
                     "--schedule constant --ema-decay 0 --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_FALSE(fs::exists(out / "snapshots"));
  EXPECT_FALSE(contains(tlkit::read_file(out / "results.md"), "snapshot ensemble"));
  const auto model = static_cast<double>(fs::file_size(out / "model.pt"));
  const auto last = static_cast<double>(fs::file_size(out / "checkpoints" / "last.pt"));
  const auto best = static_cast<double>(fs::file_size(out / "checkpoints" / "best.pt"));
  EXPECT_LT(last, 1.3 * model) << "last.pt " << last << " bytes, model.pt " << model;
  EXPECT_LT(best, 1.1 * model) << "best.pt " << best << " bytes, model.pt " << model;
  // The exported candidate is marked in the table, with the reason.
  const auto table = tlkit::read_file(out / "results.md");
  EXPECT_TRUE(contains(table, "(exported)")) << table;
  EXPECT_TRUE(contains(table, "on validation")) << table;
}

// Preprocessing flags: a model without metadata and its preprocessing given by flags; the exported
// model and the feature manifest carry it, and `tlkit info` says where each value came from.
TEST_F(RunFlow, PreprocessingFlagsReachTheExportAndTheManifest) {
  const auto out = dir_ / "pre";
  auto result = tlkit_cli(finetune(out, "--input-size 16 --resize 18 --mean 0.5 --std 0.25"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto manifest = json_of(out / "features" / "train" / "manifest.json");
  EXPECT_EQ(manifest.at("preprocessing").at("crop").as_int(), 16);
  EXPECT_EQ(manifest.at("preprocessing").at("resize").as_int(), 18);
  EXPECT_EQ(manifest.at("preprocessing").at("mean").as_double_list(),
            (std::vector<double>{0.5, 0.5, 0.5}));
  result = tlkit_cli("info --model " + quoted(out / "model.pt"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "resize 18 (model) -> centre crop 16 (model)"))
      << result.output;
  EXPECT_TRUE(contains(result.output, "std 0.25,0.25,0.25 (model)")) << result.output;
  result = tlkit_cli("info --model " + quoted(out / "model.pt") + " --input-size 24");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "centre crop 24 (flag)")) << result.output;
  result = tlkit_cli("info --model " + quoted(out / "model.pt") + " --mean 1,2");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "--mean takes 1 value or 3")) << result.output;
}

// `auto` is three warm-restart cycles of whole epochs however the schedule is stepped: three
// snapshots per batch as per epoch (per batch it took one per 2 batches).
TEST_F(RunFlow, AutoScheduleTakesTheSameSnapshotsSteppedPerBatch) {
  std::vector<size_t> snapshots;
  for (const std::string per_batch : {"", "--schedule-per-batch"}) {
    const auto out = dir_ / ("auto" + per_batch);
    const auto result =
        tlkit_cli("train --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                  quoted(data_) + " --out " + quoted(out) +
                  " --val-split 0.25 --epochs 6 --batch-size 6 --schedule auto --patience 0 "
                  "--no-progress " +
                  per_batch);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    snapshots.push_back(static_cast<size_t>(
        std::distance(fs::directory_iterator(out / "snapshots"), fs::directory_iterator())));
  }
  EXPECT_EQ(snapshots[0], 3u);
  EXPECT_EQ(snapshots[1], 3u);
}
