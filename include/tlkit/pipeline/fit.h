#pragma once
// One stage of training with the standard callbacks: the step of a run between build and select.
//
// fit_stage runs the trainer with the NaN/Inf guard, the initial-loss check, EMA, snapshots, early
// stopping and the best weights on the run's one monitored metric, the CSV / TensorBoard loggers
// and (with checkpoints) checkpoints/last.pt, which the trainer writes last. It returns what
// selection needs: the last, best and EMA weights and the snapshots.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <tlkit/pipeline/config.h>
#include <tlkit/train/batch_source.h>
#include <tlkit/train/network.h>
#include <tlkit/train/trainer.h>

namespace torch::optim {
class Optimizer;
}

namespace tlkit::train {
class EmaCallback;
}

namespace tlkit::pipeline {

struct StageSetup {
  std::filesystem::path dir;  // metrics.csv, events, checkpoints/, snapshots/ go here
  std::string label;          // progress-bar label, e.g. "stage 2 (fine-tune)"
  std::string schedule;       // the schedule spec ("auto" resolved by build_scheduler)
  // The length the schedule is laid out for (0 = fit.epochs): a final fit that stops at the epoch
  // cross-validation chose follows the schedule the folds followed.
  std::int64_t schedule_epochs = 0;
  std::int64_t num_classes = 0;
  std::vector<std::string> class_names;   // recorded in checkpoints, checked on resume
  std::string lr_option = "--optimizer";  // the flag that sets this stage's lr (in advice)
  bool checkpoints = true;  // checkpoints/last.pt + best.pt (else best weights in memory only)
  bool resume = false;      // continue from dir/checkpoints/last.pt
  bool initial_loss_check = true;
  bool log = true;  // metrics.csv and TensorBoard events in `dir`
  // One more callback, made once the stage's EMA callback exists (null without EMA) and added
  // after it: e.g. to record each epoch's held-out predictions of the last and EMA weights.
  std::function<std::shared_ptr<train::Callback>(train::EmaCallback*)> extra_callback;
  std::uint64_t seed = 0;  // the draws of batch mixing (fit.mixup, fit.cutmix)
};

struct StageOutcome {
  train::FitResult fit;
  train::NamedTensors last, best, ema;  // best / ema empty when not kept
  std::int64_t best_epoch = -1;         // 1-based
  std::vector<train::NamedTensors> snapshots;
  std::vector<std::int64_t> snapshot_epochs;
};

// The network holds the last weights afterwards.
StageOutcome fit_stage(train::Network& network, torch::optim::Optimizer& optimizer,
                       const FitOptions& fit, train::BatchSource& train_source,
                       train::BatchSource* val_source, const StageSetup& setup);

}  // namespace tlkit::pipeline
