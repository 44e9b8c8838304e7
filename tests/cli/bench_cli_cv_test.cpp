// tlkit bench through the CLI on files in the CIFAR-10 binary format: the protocol (tuning runs on
// validation, final runs on test, equal starts), the result files, diverged runs kept, and a
// bench killed in the middle and resumed with its finished runs kept.

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/core/strings.h>
#include <tlkit/data/image_io.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::TempDir;
using tlkit::test::tlkit_cli;

namespace {

// CIFAR-10 binary batches (label byte, then the R, G, B planes of 32 x 32): `per_batch` records
// in each of data_batch_1..5.bin and test_batch.bin, class c brighter in the channel c % 3 and in
// row band c, so a small network learns it in a few steps.
void write_cifar(const fs::path& dir, int per_batch) {
  fs::create_directories(dir);
  torch::manual_seed(23);
  std::vector<std::string> files{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                 "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (size_t f = 0; f < files.size(); ++f) {
    std::string bytes;
    for (int i = 0; i < per_batch; ++i) {
      const int label = (i + static_cast<int>(f)) % 10;
      auto planes = torch::randint(0, 60, {3, 32, 32}, torch::kLong);
      planes[label % 3] += 120;
      planes.slice(1, 3 * label, 3 * label + 3) += 70;
      planes = planes.clamp(0, 255).to(torch::kByte).contiguous();
      bytes.push_back(static_cast<char>(label));
      bytes.append(reinterpret_cast<const char*>(planes.data_ptr<uint8_t>()), 3 * 32 * 32);
    }
    tlkit::write_file_atomic(dir / files[f], bytes);
  }
}

tlkit::Json json_of(const fs::path& file) { return tlkit::Json::parse(tlkit::read_file(file)); }

size_t lines_of(const fs::path& file) {
  const auto text = tlkit::read_file(file);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

size_t run_files(const fs::path& out) {
  size_t n = 0;
  if (!fs::exists(out / "runs")) return 0;
  for (const auto& entry : fs::directory_iterator(out / "runs"))
    n += entry.path().extension() == ".json" ? 1 : 0;
  return n;
}

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override { write_cifar(data_, 24); }
  std::string bench(const fs::path& out, const std::string& extra) const {
    return "bench --problem cifar10_3c3d --data cifar10:" + quoted(data_) + " --out " +
           quoted(out) + " --batch-size 16 --val-split 0.2 --threads 2 " + extra;
  }
  TempDir dir_;
  fs::path data_ = dir_ / "cifar";
};

}  // namespace

TEST_F(BenchCli, TunesOnValidationReportsTestAndStartsEveryOptimizerEqually) {
  const auto out = dir_ / "bench";
  const auto result = tlkit_cli(bench(out,
                                      "--optimizers sgd,adam --schedules constant,cosine "
                                      "--epochs 2 --seeds 2 --lr-grid 1e-3,1e-2 "
                                      "--max-extensions 1 --target 0.3"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "best: ")) << result.output;
  for (const auto* file :
       {"report.md", "results.csv", "results.json", "bench.json", "train_loss_constant.png",
        "test_acc_cosine.png", "lr_sensitivity_cosine.png", "performance_profile.png"})
    EXPECT_TRUE(fs::exists(out / file)) << file;

  const auto results = json_of(out / "results.json");
  const auto& env = results.at("environment");
  for (const auto* key : {"cpu", "cores", "threads", "device", "libtorch", "tlkit"})
    EXPECT_TRUE(env.contains(key)) << key;
  const auto& runs = results.at("runs").as_array();
  std::map<std::int64_t, std::set<double>> initial_by_seed;
  std::map<std::string, std::set<double>> tuned_lrs;
  size_t finals = 0;
  for (const auto& run : runs) {
    const auto phase = run.at("phase").as_string();
    const auto key = run.at("optimizer").as_string() + "/" + run.at("schedule").as_string();
    initial_by_seed[run.at("seed").as_int()].insert(run.at("initial_loss").as_double());
    EXPECT_EQ(run.at("val_acc").as_array().size(), 2u);
    EXPECT_EQ(run.at("train_loss").as_array().size(), 2u);
    if (phase == "tune") {
      tuned_lrs[key].insert(run.at("lr").as_double());
      EXPECT_GE(run.at("seed").as_int(), 1000);  // tuning seeds are never the final ones
      EXPECT_TRUE(run.at("test_acc").as_array().empty()) << "a tuning run looked at test";
    } else {
      ++finals;
      EXPECT_LT(run.at("seed").as_int(), 2);
      EXPECT_EQ(run.at("test_acc").as_array().size(), 2u);
      EXPECT_GE(run.at("final_test_acc").as_double(), 0);
      EXPECT_GT(run.at("train_seconds").as_double(), 0);
      EXPECT_GE(run.at("optimizer_seconds").as_double(), 0);
      EXPECT_LT(run.at("optimizer_seconds").as_double(), run.at("train_seconds").as_double());
    }
  }
  EXPECT_EQ(finals, 8u);  // 2 optimizers x 2 schedules x 2 seeds
  // Each optimizer x schedule tried the grid, extended by at most one value per side.
  ASSERT_EQ(tuned_lrs.size(), 4u);
  for (const auto& [key, lrs] : tuned_lrs) {
    EXPECT_TRUE(lrs.count(1e-3) && lrs.count(1e-2)) << key;
    EXPECT_LE(lrs.size(), 3u) << key;
  }
  // One seed, one starting point, whatever the optimizer, schedule and lr.
  for (const auto& [seed, losses] : initial_by_seed)
    EXPECT_EQ(losses.size(), 1u) << "seed " << seed << " started from different weights";
  // The tuned lr is one of the tried ones and the report has the tables.
  const auto& tuned = results.at("tuned_lr");
  for (const auto* key : {"sgd/constant", "sgd/cosine", "adam/constant", "adam/cosine"})
    EXPECT_TRUE(tuned_lrs[key].count(tuned.at(key).as_double())) << key;
  const auto report = tlkit::read_file(out / "report.md");
  EXPECT_TRUE(contains(report, "| sgd | cosine |")) << report;
  EXPECT_TRUE(contains(report, "Learning-rate sensitivity")) << report;
  EXPECT_TRUE(contains(report, "Best configuration")) << report;
  EXPECT_EQ(lines_of(out / "results.csv"), runs.size() + 1);
}

TEST_F(BenchCli, FixedLrSkipsTuningAndDivergedRunsAreKept) {
  const auto out = dir_ / "diverge";
  const auto result = tlkit_cli(bench(out,
                                      "--optimizers sgd,adam --schedules constant --epochs 2 "
                                      "--seeds 2 --lr sgd=1e30,adam=1e-3"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "DIVERGED")) << result.output;
  const auto runs = json_of(out / "results.json").at("runs").as_array();
  ASSERT_EQ(runs.size(), 4u);  // no tuning runs
  size_t diverged = 0;
  for (const auto& run : runs) {
    EXPECT_EQ(run.at("phase").as_string(), "final");
    if (run.at("optimizer").as_string() == "sgd") {
      EXPECT_TRUE(run.at("diverged").as_bool());
      EXPECT_FALSE(run.at("diverged_at").as_string().empty());
      ++diverged;
    } else {
      EXPECT_FALSE(run.at("diverged").as_bool());
    }
  }
  EXPECT_EQ(diverged, 2u);
  EXPECT_TRUE(contains(tlkit::read_file(out / "report.md"), "| 2/2 |"));
}

// --mixup and --cutmix on the bench's image batches: the runs train, bench.json records the
// protocol, and a bad value is refused before any run.
TEST_F(BenchCli, MixingFlagsTrainAndAreRecorded) {
  const auto out = dir_ / "mixed";
  auto result = tlkit_cli(bench(out,
                                "--optimizers adam --schedules constant --epochs 2 --seeds 1 "
                                "--lr adam=1e-3 --mixup 0.2 --cutmix 1 --mix-off-epoch 1"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "batch mixing: mixup alpha 0.2, cutmix alpha 1"))
      << result.output;
  const auto config = json_of(out / "bench.json").at("config");
  EXPECT_EQ(config.at("mixup").as_double(), 0.2);
  EXPECT_EQ(config.at("cutmix").as_double(), 1.0);
  EXPECT_EQ(config.at("mix_off_epoch").as_int(), 1);
  const auto runs = json_of(out / "results.json").at("runs").as_array();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(runs[0].at("diverged").as_bool());
  result = tlkit_cli(bench(dir_ / "bad", "--optimizers adam --schedules constant --mixup -1"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "--mixup must be a Beta alpha >= 0")) << result.output;
}

// --augment and --random-erasing on the bench's in-memory training images: the runs train,
// bench.json records them, a resume with other values is refused, and a bad spec is refused.
TEST_F(BenchCli, AugmentationFlagsTrainAndAreRecorded) {
  const auto out = dir_ / "augmented";
  const std::string flags =
      "--optimizers adam --schedules constant --epochs 2 --seeds 1 --lr adam=1e-3 ";
  auto result = tlkit_cli(
      bench(out, flags + "--augment rand:2,9 --random-erasing 0.25 --erasing-value random"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "per-image augmentation of the training images: "
                                      "RandAugment(num_ops=2, magnitude=9"))
      << result.output;
  const auto config = json_of(out / "bench.json").at("config");
  EXPECT_EQ(config.at("augment").as_string(), "rand:2,9");
  EXPECT_EQ(config.at("random_erasing").as_double(), 0.25);
  EXPECT_EQ(config.at("erasing_value").as_string(), "random");
  const auto runs = json_of(out / "results.json").at("runs").as_array();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(runs[0].at("diverged").as_bool());
  result = tlkit_cli(bench(out, flags + "--augment trivial --random-erasing 0.25 "
                                        "--erasing-value random --resume"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "--resume: augment was")) << result.output;
  result = tlkit_cli(
      bench(dir_ / "bad", "--optimizers adam --schedules constant --augment rand:3"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "--augment: augmentation 'rand:3' needs two numbers N,M"))
      << result.output;
  const auto help = tlkit_cli("bench --help").output;
  for (const auto* flag : {"--augment", "--random-erasing", "--erasing-value"})
    EXPECT_TRUE(contains(help, flag)) << flag;
}

// kill -9 in the middle of a bench: --resume keeps the finished runs (their files untouched) and
// completes the rest; other options are refused.
TEST_F(BenchCli, AKilledBenchResumesWithItsFinishedRunsKept) {
  const auto out = dir_ / "killed";
  const auto args = bench(out,
                          "--optimizers sgd,adam,rmsprop --schedules constant --epochs 3 "
                          "--seeds 2 --lr-grid 1e-3,1e-2 --max-extensions 0");
  const auto pid_file = dir_ / "pid";
  ASSERT_EQ(tlkit::test::run_command("'" + tlkit::test::cli_path() + "' " + args +
                                     " >/dev/null 2>&1 & echo $! > " + quoted(pid_file))
                .exit_code,
            0);
  const auto pid = tlkit::trim(tlkit::read_file(pid_file));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (run_files(out) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  tlkit::test::run_command("kill -9 " + pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto finished = run_files(out);
  ASSERT_GE(finished, 3u);
  ASSERT_LT(finished, 12u) << "the bench finished before it was killed";
  std::map<fs::path, std::string> before;
  for (const auto& entry : fs::directory_iterator(out / "runs"))
    if (entry.path().extension() == ".json") before[entry.path()] = tlkit::read_file(entry.path());

  auto other = tlkit_cli(bench(out,
                               "--optimizers sgd,adam --schedules constant --epochs 3 "
                               "--seeds 2 --lr-grid 1e-3,1e-2 --max-extensions 0 --resume"));
  EXPECT_NE(other.exit_code, 0);
  EXPECT_TRUE(contains(other.output, "optimizers")) << other.output;

  const auto resumed = tlkit_cli(args + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "kept " + std::to_string(before.size()) + " finished runs"))
      << resumed.output;
  for (const auto& [path, text] : before) EXPECT_EQ(tlkit::read_file(path), text) << path;
  const auto runs = json_of(out / "results.json").at("runs").as_array();
  EXPECT_EQ(runs.size(), 12u);  // 3 optimizers x (2 grid points + 2 seeds)
  EXPECT_EQ(run_files(out), 12u);

  const auto missing = tlkit_cli(bench(dir_ / "never", "--resume"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(contains(missing.output, "no bench to continue")) << missing.output;
}

// Any TorchScript classifier, streamed from disk when the splits exceed --max-memory-mb.
TEST_F(BenchCli, AModelFileStreamedFromDisk) {
  const auto out = dir_ / "model";
  const auto result = tlkit_cli(
      "bench --model " + quoted(tlkit::test::tiny_model()) + " --data cifar10:" + quoted(data_) +
      " --out " + quoted(out) +
      " --optimizers adam --schedules cosine --epochs 1 --seeds 1 --lr adam=1e-3 --max-memory-mb 0"
      " --val-split 0.2 --threads 2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "streamed")) << result.output;
  const auto runs = json_of(out / "results.json").at("runs").as_array();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_NEAR(runs[0].at("initial_loss").as_double(), std::log(10.0), 0.5);
}

// An image folder without test/: an error that names the fix, then --test-split carves one.
TEST_F(BenchCli, AFolderWithoutTestNeedsTestSplit) {
  const auto folder = dir_ / "photos";
  torch::manual_seed(4);
  for (const std::string name : {"cat", "dog", "fox"}) {
    fs::create_directories(folder / name);
    for (int i = 0; i < 12; ++i) {
      const auto image = torch::randint(0, 256, {16, 16, 3}, torch::kLong).to(torch::kByte);
      tlkit::data::write_image(folder / name / (std::to_string(i) + ".png"), image);
    }
  }
  const auto args = "bench --model " + quoted(tlkit::test::tiny_model()) + " --data " +
                    quoted(folder) +
                    " --optimizers adam --schedules constant --lr adam=1e-3 --epochs 1 --seeds 1"
                    " --val-split 0.25 --batch-size 4 --threads 2 --out ";
  auto result = tlkit_cli(args + quoted(dir_ / "no_test"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "--test-split")) << result.output;
  result = tlkit_cli(args + quoted(dir_ / "carved") + " --test-split 0.25");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // 12 per class: 3 to val (0.25), then 2 of the remaining 9 to test (round(9 x 0.25)).
  EXPECT_TRUE(contains(result.output, "21 train / 9 val / 6 test images")) << result.output;
  const auto runs = json_of(dir_ / "carved" / "results.json").at("runs").as_array();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_GE(runs[0].at("final_test_acc").as_double(), 0);
}

// --accumulate 2 with --nproc 2: the ranks average the accumulated gradients once per optimizer
// step (after the last micro-batch), so two processes follow one process; a step per micro-batch,
// or an average that kept only the last micro-batch's gradients, would not.
TEST_F(BenchCli, AccumulatedStepsOnTwoProcessesFollowOneProcess) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  const std::string options =
      "--optimizers momentum --schedules constant --epochs 2 --seeds 1 --lr momentum=0.01 "
      "--accumulate 2 --label-smoothing 0.1 --dist-timeout 60";
  auto result = tlkit_cli(bench(dir_ / "one", options));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(result.output, match, std::regex("data: (\\d+) train")))
      << result.output;
  const auto train_images = std::stoi(match[1]);
  result = tlkit_cli(bench(dir_ / "two", options + " --nproc 2"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(json_of(dir_ / "one" / "bench.json").at("config").at("accumulate").as_int(), 2);
  const auto one = json_of(dir_ / "one" / "results.json").at("runs").as_array();
  const auto two = json_of(dir_ / "two" / "results.json").at("runs").as_array();
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(two.size(), 1u);
  // Optimizer steps: 2 epochs of ceil(batches / 2), batches of 16 (the last partial one dropped).
  const auto batches = train_images / 16;
  EXPECT_EQ(one[0].at("steps").as_int(), 2 * ((batches + 1) / 2));
  EXPECT_EQ(two[0].at("steps").as_int(), one[0].at("steps").as_int());
  for (const auto* curve : {"train_loss", "val_loss"}) {
    const auto& a = one[0].at(curve).as_array();
    const auto& b = two[0].at(curve).as_array();
    ASSERT_EQ(a.size(), b.size()) << curve;
    for (size_t e = 0; e < a.size(); ++e)
      EXPECT_NEAR(a[e].as_double(), b[e].as_double(), 1e-3 * std::abs(a[e].as_double()))
          << curve << " epoch " << e;
  }
}

// --nproc 2: the same bench as one process (every rank augments its half of each one-process
// batch, the L2 term and the reduced metrics included), rank 0 writing the files; a batch that
// does not split over the processes is refused.
TEST_F(BenchCli, TwoProcessesGiveTheSameBenchAsOne) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  const std::string options =
      "--optimizers momentum,adam --schedules constant --epochs 2 --seeds 1 "
      "--lr momentum=0.01,adam=1e-3 --dist-timeout 60";
  auto result = tlkit_cli(bench(dir_ / "one", options));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  result = tlkit_cli(bench(dir_ / "two", options + " --nproc 2"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "starting 2 processes")) << result.output;
  // Rank 0 alone reports.
  size_t reports = 0;
  for (auto at = result.output.find("report: "); at != std::string::npos;
       at = result.output.find("report: ", at + 1))
    ++reports;
  EXPECT_EQ(reports, 1u) << result.output;
  const auto one = json_of(dir_ / "one" / "results.json").at("runs").as_array();
  const auto two = json_of(dir_ / "two" / "results.json").at("runs").as_array();
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(json_of(dir_ / "two" / "results.json").at("environment").at("processes").as_int(), 2);
  for (size_t r = 0; r < one.size(); ++r) {
    EXPECT_EQ(one[r].at("id").as_string(), two[r].at("id").as_string());
    EXPECT_EQ(one[r].at("steps").as_int(), two[r].at("steps").as_int());
    EXPECT_EQ(one[r].at("allreduce_seconds").as_double(), 0);
    EXPECT_GT(two[r].at("allreduce_seconds").as_double(), 0);
    EXPECT_NEAR(one[r].at("initial_loss").as_double(), two[r].at("initial_loss").as_double(), 1e-6);
    for (const auto* curve : {"train_loss", "val_loss", "test_loss"}) {
      const auto& a = one[r].at(curve).as_array();
      const auto& b = two[r].at(curve).as_array();
      ASSERT_EQ(a.size(), b.size()) << curve;
      for (size_t e = 0; e < a.size(); ++e)
        // Float32 sums over other batch splits differ by rounding, which 2 epochs of training
        // amplify (3e-4 relative seen on LibTorch 2.6); a wrong split differs by far more.
        EXPECT_NEAR(a[e].as_double(), b[e].as_double(), 1e-3 * std::abs(a[e].as_double()))
            << curve << " epoch " << e;
    }
  }
  result = tlkit_cli(bench(dir_ / "odd", options + " --nproc 2 --batch-size 15"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "multiple of 2")) << result.output;
}
