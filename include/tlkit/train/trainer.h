#pragma once
// Trainer: the plain supervised loop (forward, cross-entropy, backward, optimizer step, scheduler
// step, validation) with every extension as a Callback. Checkpoints hold everything an exact resume
// needs: weights and buffers, optimizer state, schedule state, callbacks' state, RNG, counters.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include <tlkit/train/batch_source.h>
#include <tlkit/train/callback.h>
#include <tlkit/train/clip.h>
#include <tlkit/train/loss.h>
#include <tlkit/train/metrics.h>
#include <tlkit/train/mix.h>
#include <tlkit/train/monitor.h>
#include <tlkit/train/network.h>
#include <tlkit/train/precision.h>

namespace tlkit::schedule {
class LRScheduler;
}

namespace tlkit::train {

enum class ScheduleStep { kPerEpoch, kPerBatch };

struct TrainerOptions {
  std::int64_t epochs = 10;
  std::int64_t num_classes = 0;  // required: size of the model's output
  // What each output means (optional): checkpoints record them and a resume on other classes is
  // refused (a renamed class folder would shift every label).
  std::vector<std::string> class_names;
  c10::Device device = c10::Device(c10::kCPU);
  ScheduleStep schedule_step = ScheduleStep::kPerEpoch;
  // The run's one monitored metric: early stopping, best weights and a ReduceLROnPlateau schedule
  // watch it (mode kAuto: maximised for names containing "acc").
  std::string monitor = "val_loss";
  Mode monitor_mode = Mode::kAuto;
  double min_delta = 0;  // an improvement must exceed this
  // Validation every N epochs (and always after the first and the last): many tiny epochs (a
  // handful of images) need not each be validated. Early stopping still counts epochs since the
  // best; a metric-driven schedule (plateau) steps on validated epochs only.
  std::int64_t val_every = 1;
  double grad_clip_norm = 0;  // the clipping threshold of grad_clip_mode (0 = no clipping)
  GradClipMode grad_clip_mode = GradClipMode::kNorm;  // train/clip.h
  // Gradient accumulation: the gradients of this many consecutive batches are summed (each mean
  // loss divided by their number) before one optimizer step; the last step of an epoch takes what
  // is left. Clipping, the loss scaler, callbacks (NaN guard, EMA, snapshots), per-batch schedules
  // and global_step() count optimizer steps. Data parallel: one allreduce per step, after the
  // last micro-batch's backward. 1 = off.
  std::int64_t accumulate = 1;
  // The training loss: label smoothing and class weights (train/loss.h); validation stays plain
  // cross-entropy.
  LossOptions loss;
  // Batch mixing (train/mix.h): each training batch is mixed with the draw of (mix.seed, epoch,
  // batch index) before the forward, and the loss is soft_target_loss against the mixed smoothed
  // targets (in every epoch while mixing is configured, also after mix.off_epoch, as timm's
  // SoftTargetCrossEntropy). train_acc then counts a prediction correct when it is the target
  // with the larger share (lambda >= 0.5: the image's own label). Data parallel: one draw per
  // step for every rank, each rank pairing the images of its own shard.
  MixOptions mix;
  std::string label = "train";  // shown in the progress bar and logs
  bool progress = true;
  // Data parallelism (a training source split between the ranks of train::world()): gradients are
  // averaged over the ranks, the allreduce overlapped with backward (train::overlap_allreduce(),
  // the default) or after it. Off only for the equality test's negative control.
  bool average_gradients = true;
  // Dynamic loss scaling (fp16 autocast; see train/precision.h): the loss is scaled before
  // backward, gradients are unscaled before clipping and a step whose gradients overflowed is
  // skipped while the scale backs off. Its state is part of the checkpoint.
  bool scale_loss = false;
  LossScalerOptions loss_scaler;
};

struct FitResult {
  std::int64_t epochs_run = 0;
  std::string stop_reason;  // empty when all epochs ran
  std::vector<Metrics> history;
};

class Trainer {
 public:
  Trainer(Network& network, torch::optim::Optimizer& optimizer, TrainerOptions options);
  ~Trainer();

  void set_scheduler(std::shared_ptr<schedule::LRScheduler> scheduler);
  // Callbacks run in their order() (checkpoint writers last), then in registration order.
  void add_callback(std::shared_ptr<Callback> callback);
  const std::vector<std::shared_ptr<Callback>>& callbacks() const { return callbacks_; }

  // Trains from the current epoch (0, or where resume() left it) to options.epochs. A signal
  // (tlkit::interrupt_signal(), see core/interrupt.h) stops it after the step in hand: callbacks'
  // on_interrupt write the checkpoint, then tlkit::Interrupted is thrown.
  FitResult fit(BatchSource& train, BatchSource* val = nullptr);

  Evaluation evaluate(BatchSource& source);

  // Writes/reads everything an exact resume needs; the file is written atomically.
  void save_checkpoint(const std::filesystem::path& path) const;
  void resume(const std::filesystem::path& path);

  std::int64_t epoch() const { return next_epoch_; }
  std::int64_t global_step() const { return global_step_; }
  const std::vector<Metrics>& history() const { return history_; }
  const MetricTracker& monitor() const { return monitor_; }
  Network& network() { return network_; }
  torch::optim::Optimizer& optimizer() { return optimizer_; }
  const TrainerOptions& options() const { return options_; }
  std::vector<double> learning_rates() const;                      // one per param group
  const LossScaler* loss_scaler() const { return scaler_.get(); }  // null without scale_loss

 private:
  struct Parallel;
  Metrics train_epoch(TrainContext& context, BatchSource& train, Parallel* parallel);
  void step_scheduler_after_epoch(const Metrics& metrics, bool validation_skipped);
  [[noreturn]] void interrupt(TrainContext& context, int signal);

  Network& network_;
  torch::optim::Optimizer& optimizer_;
  TrainerOptions options_;
  std::shared_ptr<schedule::LRScheduler> scheduler_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  std::unique_ptr<LossScaler> scaler_;
  at::Tensor class_weight_;  // options_.loss.class_weights on the logits' device (train/loss.h)
  MetricTracker monitor_;
  std::vector<Metrics> history_;
  std::int64_t next_epoch_ = 0;
  std::int64_t global_step_ = 0;
  // Where the epoch in progress is (a checkpoint written by an interrupt holds it, and a resume
  // from it continues with the next batch): batches done, their sums, the rates it started with.
  std::int64_t epoch_batch_ = 0;
  double epoch_loss_sum_ = 0;
  std::int64_t epoch_correct_ = 0, epoch_seen_ = 0;
  std::vector<double> epoch_rates_;
  bool resume_mid_epoch_ = false;
};

// Throws (naming both lists) when the checkpoint at `path` records class names other than
// `classes`; checkpoints without names pass. A resume checks this itself; callers use it to fail
// before any work.
void check_checkpoint_classes(const std::filesystem::path& path,
                              const std::vector<std::string>& classes);

}  // namespace tlkit::train
