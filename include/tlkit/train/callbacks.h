#pragma once
// The trainer's standard callbacks:
//   EarlyStopping     stop when the run's monitored metric has not improved for `patience` epochs
//                     (Prechelt 1998, "Early Stopping — But When?"); counts only, the weights
//                     are BestWeights' job.
//   BestWeights       the weights of the best epoch of the monitored metric, kept once: in memory
//                     and, with a file, as a weights-only best.pt written atomically.
//   Checkpoint        checkpoints/last.pt every epoch, atomically: what Trainer::resume needs for
//                     an exact continuation (weights once, optimizer, schedule, callbacks, RNG).
//   SnapshotEnsemble  a snapshot of the weights at each learning-rate restart (the minimum of a
//                     cosine cycle: Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for
//                     free").
//   NonFiniteGuard    before the update: a NaN/Inf loss or gradient stops the run (or skips the
//   step)
//                     with the weights of the last good step; NaN/Inf weights an update made.
//   InitialLossCheck  warns when the first loss is far from ln(C), the loss of uniform predictions.
//   CsvLogger / TensorBoardLogger  one row / one scalar per metric and epoch.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <tlkit/core/tensorboard.h>
#include <tlkit/train/callback.h>
#include <tlkit/train/monitor.h>
#include <tlkit/train/network.h>

namespace tlkit::train {

struct EarlyStoppingOptions {
  std::int64_t patience = 5;  // epochs without improvement of the run's monitored metric
};

class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  std::string name() const override { return "early_stopping"; }
  bool on_epoch_end(TrainContext& context) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  std::optional<std::int64_t> stopped_epoch() const { return stopped_epoch_; }  // 1-based

 private:
  EarlyStoppingOptions options_;
  std::optional<std::int64_t> stopped_epoch_;
};

class BestWeights : public Callback {
 public:
  // file: where best.pt goes (empty: memory only). restore_at_end: the network ends with them.
  explicit BestWeights(std::filesystem::path file = {}, bool restore_at_end = false);
  std::string name() const override { return "best_weights"; }
  CallbackOrder order() const override { return CallbackOrder::kBestWeights; }
  bool on_epoch_end(TrainContext& context) override;
  void on_train_end(TrainContext& context) override;
  // State: the best epoch and the file's name; load() reads the weights back from the file.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  const NamedTensors& weights() const { return weights_; }  // empty until an epoch improved
  std::int64_t epoch() const { return epoch_; }             // 1-based; -1 before
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  bool restore_at_end_;
  NamedTensors weights_;
  std::int64_t epoch_ = -1;
};

// last.pt at the end of every epoch whose training took at least 10x as long as the last write
// (so writing costs at most ~10% of the run, however tiny its epochs), always at the last epoch,
// when a callback stops the run, and on a signal (mid-epoch too). A kill -9 loses at most about
// ten writes' worth of training; the resumed run repeats it bit for bit.
class Checkpoint : public Callback {
 public:
  explicit Checkpoint(std::filesystem::path dir);
  std::string name() const override { return "checkpoint"; }
  CallbackOrder order() const override { return CallbackOrder::kCheckpoint; }
  bool on_epoch_end(TrainContext& context) override;
  // Writes last.pt at the step in hand, unless this epoch's end wrote it already.
  void on_interrupt(TrainContext& context) override;
  std::filesystem::path last_path() const { return dir_ / "last.pt"; }

 private:
  void write(TrainContext& context);
  std::filesystem::path dir_;
  double write_seconds_ = 0;  // how long the last write took
  bool written_ = false;
  bool epoch_end_written_ = false;
  std::chrono::steady_clock::time_point written_at_;
};

// Weights-only files for snapshots, best weights and exports of a state: one archive of named
// tensors, written atomically; `epoch` (1-based, -1 = none) is stored beside them.
void save_state(const NamedTensors& state, const std::filesystem::path& path,
                std::int64_t epoch = -1);
NamedTensors load_state(const std::filesystem::path& path, std::int64_t* epoch = nullptr);

class SnapshotEnsemble : public Callback {
 public:
  // dir: where snapshot_<k>.pt files go (empty = keep in memory only). max_snapshots: keep the last
  // M.
  explicit SnapshotEnsemble(std::filesystem::path dir = {}, std::int64_t max_snapshots = 0);
  std::string name() const override { return "snapshot_ensemble"; }
  void on_train_begin(TrainContext& context) override;
  void on_batch_end(TrainContext& context) override;
  bool on_epoch_end(TrainContext& context) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  const std::vector<NamedTensors>& snapshots() const { return snapshots_; }
  const std::vector<std::int64_t>& snapshot_epochs() const { return epochs_; }  // 1-based

 private:
  void check_restart(TrainContext& context, std::int64_t epoch_number);

  std::filesystem::path dir_;
  std::int64_t max_snapshots_;
  double last_lr_ = -1;
  bool declined_ = false;         // the lr fell since the last snapshot (schedules without cycle())
  std::int64_t last_cycle_ = -1;  // the schedule's cycle() at the last check
  std::vector<NamedTensors> snapshots_;
  std::vector<std::int64_t> epochs_;
  std::vector<std::string> files_;
};

// kStop: the run ends with advice. kSkip: the bad step is not applied. kRollback: the weights,
// optimizer state and schedule go back to the last good epoch's end (or the start) and every
// learning rate is halved, at most `max_skips` times in a run.
enum class NonFinitePolicy { kStop, kSkip, kRollback };

class NonFiniteGuard : public Callback {
 public:
  // kSkip: a non-finite step is not applied; `max_skips` of them in a row stop the run.
  // `lr_option`: the flag that sets this stage's learning rate, named in the advice (stage 1 of
  // finetune has its own, --head-optimizer).
  explicit NonFiniteGuard(NonFinitePolicy policy = NonFinitePolicy::kStop,
                          std::int64_t max_skips = 10, std::string lr_option = "--optimizer")
      : policy_(policy), max_skips_(max_skips), lr_option_(std::move(lr_option)) {}
  std::string name() const override { return "non_finite_guard"; }
  void on_before_optimizer_step(TrainContext& context) override;
  // Also NaN/Inf in the weights an update produced (a finite gradient times a huge lr): found by
  // the next step's loss, or at the epoch's end before anything keeps them; rolled back
  // (kRollback) or the run stops (an applied update cannot be skipped).
  // Finite but absurd losses (over 100 x ln(C), chance being ln(C)): the weights have blown up
  // without a NaN; warned about once, naming the stage and the flag.
  bool on_epoch_end(TrainContext& context) override;
  void on_train_begin(TrainContext& context) override;
  std::int64_t skipped() const { return skipped_total_; }
  std::int64_t rollbacks() const { return rollbacks_; }

 private:
  void keep_good_state(TrainContext& context);
  void roll_back(TrainContext& context, const std::string& what);

  NonFinitePolicy policy_;
  std::int64_t max_skips_;
  std::string lr_option_;
  std::int64_t skipped_in_a_row_ = 0, skipped_total_ = 0, rollbacks_ = 0;
  bool warned_absurd_ = false;
  // kRollback: the last good state (weights, serialised optimizer and schedule state).
  NamedTensors good_weights_;
  std::string good_optimizer_, good_schedule_;
  std::int64_t good_epoch_ = 0;
  double lr_scale_ = 1;
};

class InitialLossCheck : public Callback {
 public:
  explicit InitialLossCheck(std::int64_t num_classes) : num_classes_(num_classes) {}
  std::string name() const override { return "initial_loss_check"; }
  void on_batch_end(TrainContext& context) override;
  std::optional<bool> plausible() const { return plausible_; }  // set after the first batch

 private:
  std::int64_t num_classes_;
  std::optional<bool> plausible_;
};

class CsvLogger : public Callback {
 public:
  explicit CsvLogger(std::filesystem::path path) : path_(std::move(path)) {}
  std::string name() const override { return "csv_logger"; }
  void on_train_begin(TrainContext& context) override;
  bool on_epoch_end(TrainContext& context) override;

 private:
  std::filesystem::path path_;
  std::vector<std::string> columns_;
};

class TensorBoardLogger : public Callback {
 public:
  explicit TensorBoardLogger(std::filesystem::path dir, std::string prefix = "")
      : dir_(std::move(dir)), prefix_(std::move(prefix)) {}
  std::string name() const override { return "tensorboard_logger" + prefix_; }
  void on_train_begin(TrainContext& context) override;
  bool on_epoch_end(TrainContext& context) override;

 private:
  std::filesystem::path dir_;
  std::string prefix_;
  std::unique_ptr<TensorBoardWriter> writer_;
};

}  // namespace tlkit::train
