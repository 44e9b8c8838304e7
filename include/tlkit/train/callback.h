#pragma once
// Training extensions are callbacks with named hooks (STYLE.md habit 5, after ensmallen): the
// trainer's loop stays plain and early stopping, checkpoints, snapshots, weight averaging, guards
// and loggers plug in. on_epoch_end returns true to ask the trainer to stop.

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

// What a callback sees: the objects being trained and where the loop is.
struct TrainContext {
  TrainContext(Trainer& trainer_, Network& network_, torch::optim::Optimizer& optimizer_)
      : trainer(trainer_), network(network_), optimizer(optimizer_) {}
  Trainer& trainer;
  Network& network;
  torch::optim::Optimizer& optimizer;
  schedule::LRScheduler* scheduler = nullptr;  // the trainer's schedule, if any
  std::int64_t epoch = 0;            // 0-based index of the current epoch
  std::int64_t epochs = 0;           // planned number of epochs
  std::int64_t global_step = 0;      // optimizer steps so far
  std::int64_t batch = 0;            // index of the batch within the epoch
  std::int64_t batches_per_epoch = 0;
  double batch_loss = 0;             // loss of the last batch (on_batch_end)
  std::int64_t batch_size = 0;
  Metrics metrics;                   // this epoch's metrics (train_loss, val_acc, lr_group0, ...)
  std::string stop_reason;           // set by the callback that stops training
};

class Callback {
 public:
  virtual ~Callback() = default;
  // A unique name; also the key of the callback's state in a checkpoint.
  virtual std::string name() const = 0;

  virtual void on_train_begin(TrainContext&) {}
  virtual void on_epoch_begin(TrainContext&) {}
  virtual void on_batch_end(TrainContext&) {}         // after the optimizer step
  virtual void on_validation_end(TrainContext&) {}    // add metrics before anyone decides
  virtual bool on_epoch_end(TrainContext&) { return false; }  // true = stop training
  virtual void on_train_end(TrainContext&) {}

  // State needed for an exact resume (counters, best values); stateless callbacks keep the defaults.
  virtual void save(torch::serialize::OutputArchive&) const {}
  virtual void load(torch::serialize::InputArchive&) {}
};

}  // namespace tlkit::train
