#pragma once
// Training extensions are callbacks with named hooks (STYLE.md habit 5, after ensmallen): the
// trainer's loop stays plain and early stopping, checkpoints, snapshots, weight averaging, guards
// and loggers plug in. on_epoch_end returns true to ask the trainer to stop.
//
// A callback's state (save/load) is small and named, as Lightning's state_dict(): counters, scores,
// file names relative to the run folder; never a copy of the weights. The trainer runs callbacks
// in order() (stable), so checkpoint writers run after everything that changes state in a hook.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/serialize/archive.h>

#include <tlkit/train/metrics.h>

namespace torch::optim {
class Optimizer;
}

namespace tlkit::schedule {
class LRScheduler;
}

namespace tlkit::train {

class Trainer;
class Network;
class MetricTracker;

// What a callback sees: the objects being trained and where the loop is.
struct TrainContext {
  TrainContext(Trainer& trainer_, Network& network_, torch::optim::Optimizer& optimizer_)
      : trainer(trainer_), network(network_), optimizer(optimizer_) {}
  Trainer& trainer;
  Network& network;
  torch::optim::Optimizer& optimizer;
  schedule::LRScheduler* scheduler = nullptr;  // the trainer's schedule, if any
  std::int64_t epoch = 0;                      // 0-based index of the current epoch
  std::int64_t epochs = 0;                     // planned number of epochs
  std::int64_t global_step = 0;                // optimizer steps so far
  std::int64_t batch = 0;                      // index of the batch within the epoch
  std::int64_t batches_per_epoch = 0;
  double batch_loss = 0;  // loss of the last batch (on_batch_end)
  std::int64_t batch_size = 0;
  Metrics metrics;          // this epoch's metrics (train_loss, val_acc, lr_group0, ...)
  std::string stop_reason;  // set by the callback that stops training
  bool skip_step = false;   // set in on_before_optimizer_step: this batch's update is not applied
  // The loss scaler found an inf/NaN gradient (the scale was too high, not a divergence): the
  // step is skipped and the scale backed off before the callbacks see it.
  bool loss_scale_overflow = false;
  // The loss scaler checked every gradient of this step and found them all finite (callbacks
  // need not check again: on CUDA each check is a device sync).
  bool gradients_checked_finite = false;
  // The run's one monitored metric (TrainerOptions::monitor): its best so far and whether this
  // epoch improved on it (set after validation, before on_validation_end).
  const MetricTracker* monitor = nullptr;
  bool improved = false;
  // There is validation data but this epoch did not run it (TrainerOptions::val_every): no val_*
  // metrics, nothing for the monitor.
  bool validation_skipped = false;
};

// Where a callback runs among the others (ascending; equal values keep their registration order).
enum class CallbackOrder : int { kNormal = 0, kBestWeights = 90, kCheckpoint = 100 };

class Callback {
 public:
  virtual ~Callback() = default;
  // A unique name; also the key of the callback's state in a checkpoint.
  virtual std::string name() const = 0;
  virtual CallbackOrder order() const { return CallbackOrder::kNormal; }

  virtual void on_train_begin(TrainContext&) {}
  virtual void on_epoch_begin(TrainContext&) {}
  // After backward (and gradient clipping), before the update: set context.skip_step to leave the
  // weights unchanged, or throw to stop with the weights of the last good step.
  virtual void on_before_optimizer_step(TrainContext&) {}
  virtual void on_batch_end(TrainContext&) {}                 // after the optimizer step
  virtual void on_validation_end(TrainContext&) {}            // add metrics before anyone decides
  virtual bool on_epoch_end(TrainContext&) { return false; }  // true = stop training
  virtual void on_train_end(TrainContext&) {}
  // A signal (SIGINT/SIGTERM) stopped the run after a finished step (context.batch steps of epoch
  // context.epoch done, or a whole epoch when context.batch is 0): write what a resume needs, and
  // say where in context.stop_reason. The trainer throws tlkit::Interrupted afterwards.
  virtual void on_interrupt(TrainContext&) {}

  // State needed for an exact resume (counters, best values); stateless callbacks keep the
  // defaults.
  virtual void save(torch::serialize::OutputArchive&) const {}
  virtual void load(torch::serialize::InputArchive&) {}
};

}  // namespace tlkit::train
