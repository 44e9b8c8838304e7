#pragma once
// `tlkit bench`: optimizers x schedules on one test problem, compared fairly (after DeepOBS and
// MLCommons AlgoPerf).
//
// Protocol. For each optimizer x schedule, the learning rate is tuned on a validation split held
// out of the training data (never on test): every lr of a log-spaced grid is trained with
// `tune_seeds` seeds and scored by its mean final validation accuracy (a diverged run scores 0);
// when the best lr sits at an edge of the grid, the grid is extended past that edge (at most
// `max_extensions` times per side). The chosen lr is then trained with `seeds` fresh seeds, with
// the test split evaluated after every epoch. `lr` skips tuning for the optimizers it names.
// For a given seed every run starts from the same initial weights and sees the same batches in the
// same order (and the same augmentation), whatever the optimizer and schedule; its initial loss on
// validation (about ln C) is recorded so equal starts are visible.
//
// Timing follows AlgoPerf: evaluation is off the clock. Per run: training time, time and steps to
// the validation-accuracy target, share of training time in the optimizer step, total wall time.
//
// The output folder holds bench.json (the protocol and the machine), runs/<id>.json (one per
// finished run, written atomically: `resume` keeps them), results.csv, results.json (every run
// with its per-epoch curves), report.md and PNG plots.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include <tlkit/core/json.h>
#include <tlkit/pipeline/config.h>

namespace tlkit::pipeline {

struct BenchConfig {
  std::string problem;           // a built-in test problem (problems.h), or empty with `model`
  std::filesystem::path model;   // any TorchScript classifier (re-initialised per seed)
  bool keep_weights = false;     // `model`: start every run from the file's weights instead
  std::string data;              // a source (build.h); empty = the problem's default data
  PreprocessOptions preprocess;  // `model` only: overrides its metadata
  std::vector<std::string> optimizers{"sgd",     "momentum", "nesterov", "adagrad",
                                      "rmsprop", "adam",     "adamw"};
  std::vector<std::string> schedules{"constant", "step", "cosine"};
  std::int64_t epochs = 0;       // 0 = the problem's (100 for DeepOBS's)
  std::int64_t tune_epochs = 0;  // 0 = epochs
  std::int64_t seeds = 3;        // final runs per optimizer x schedule
  std::int64_t tune_seeds = 1;   // runs per grid point
  // "auto": each optimizer's torch default lr x 10^k, k = -1, 0, 1; "LO:HI:N": N per decade from
  // LO to HI; or explicit values "1e-3,1e-2,0.1".
  std::string lr_grid = "auto";
  std::int64_t max_extensions = 3;
  std::map<std::string, double> lr;  // optimizer -> lr: no tuning for it
  double target = -1;                // validation-accuracy target (-1 = the problem's, 0 = none)
  double val_split = 0.1;
  // A source without a test split (an image folder without test/): this fraction of the training
  // images left after the val split, stratified and seeded, becomes the test split (0 = such a
  // source is an error).
  double test_split = 0;
  size_t limit = 0;             // at most this many images per split (0 = all)
  std::int64_t batch_size = 0;  // 0 = the problem's (64 for a model)
  size_t workers = 2;
  size_t max_memory_mb = 4096;  // splits are held in memory up to this size, else streamed
  std::uint64_t seed = 0;       // the data split; run seeds are seed + 1000 (tuning) / seed + k
  c10::Device device = c10::kCPU;
  std::filesystem::path out;
  bool resume = false;
  bool progress = false;  // per-epoch progress bars (one line per finished run is always printed)
  // The training loss (train/loss.h), as train's --label-smoothing and --class-weights.
  double label_smoothing = 0;
  std::string class_weights = "none";
  std::string sampler = "shuffle";      // or "balanced" (data/sampler.h)
  std::int64_t accumulate = 1;          // batches per optimizer step (train/trainer.h)
  bool decay_all = false;  // weight decay on biases and norm weights too (pipeline/build.h)
  double grad_clip = 0;                 // 0 = off
  std::string grad_clip_mode = "norm";  // norm | value | agc (train/clip.h)
  // Batch mixing (train/mix.h), as train's --mixup, --cutmix, --mix-prob, --mix-switch-prob,
  // --mix-off-epoch; each run draws from its own seed.
  double mixup = 0;
  double cutmix = 0;
  double mix_prob = 1;
  double mix_switch_prob = 0.5;
  std::int64_t mix_off_epoch = 0;
  // Per-image augmentation of the training images held in memory, as train's --augment,
  // --random-erasing and --erasing-value (data/auto_augment.h, data/random_erasing.h), drawn per
  // (run seed, epoch, image); streamed splits train without augmentation.
  std::string augment = "none";
  double random_erasing = 0;
  std::string erasing_value = "0";

  // The protocol as JSON (bench.json): a resume must match it.
  Json to_json() const;
  void validate() const;  // throws tlkit::Error naming the option
};

// "1e-4:1:3" -> 1e-4, 2.15e-4, 4.64e-4, 1e-3, ..., 1; "1e-3,0.01" -> {1e-3, 0.01}.
// `optimizer` resolves "auto" (its torch default lr x 0.1, 1, 10).
std::vector<double> parse_lr_grid(const std::string& spec, const std::string& optimizer);
// "adam=1e-3,sgd=0.1" -> {adam: 1e-3, sgd: 0.1}.
std::map<std::string, double> parse_lr_overrides(const std::string& spec);

// The lr grid after tuning results: `scores` holds the score of each tried lr (higher is better).
// Returns the next lr to try past an edge when the best one sits at that edge (the grid's ratio
// beyond it), or 0 when the choice is settled. `extensions_low/high` count what was added.
double next_grid_extension(const std::map<double, double>& scores, double ratio,
                           std::int64_t& extensions_low, std::int64_t& extensions_high,
                           std::int64_t max_extensions);

struct BenchRun {
  std::string id;     // e.g. "tune-adam-cosine-lr0.001-s1000"
  std::string phase;  // "tune" | "final"
  std::string optimizer, schedule;
  double lr = 0;
  std::uint64_t seed = 0;
  bool diverged = false;
  std::string diverged_at;  // "epoch 3, step 412" when diverged
  double initial_loss = 0;  // validation loss before the first step
  std::int64_t epochs_run = 0, steps = 0;
  double final_val_acc = 0, best_val_acc = 0, final_val_loss = 0;
  double final_test_acc = -1, best_test_acc = -1;  // final runs only
  std::int64_t best_test_epoch = 0;                // 1-based
  double target_seconds = -1;                      // training time to the target (-1 = never)
  std::int64_t target_steps = -1, target_epoch = -1;
  double train_seconds = 0, optimizer_seconds = 0, eval_seconds = 0, wall_seconds = 0;
  double allreduce_seconds = 0;  // data parallel (--nproc): training time in gradient allreduce
  std::vector<double> train_loss, val_loss, val_acc, test_loss, test_acc, epoch_seconds;

  Json to_json() const;
  static BenchRun from_json(const Json& json);
};

struct BenchSummary {
  std::vector<BenchRun> runs;           // tuning and final runs
  std::map<std::string, double> tuned;  // "optimizer/schedule" -> the chosen lr
  std::filesystem::path report;         // out/report.md
  std::string best;                     // e.g. "adam + cosine (lr 0.001): test 91.2 ± 0.2%"
};

// Runs (or, with `resume`, completes) the bench and writes its results.
BenchSummary bench(const BenchConfig& config);

// The machine and software a result came from (cpu, cores, threads, device, LibTorch, tlkit).
Json bench_environment(const c10::Device& device);

}  // namespace tlkit::pipeline
