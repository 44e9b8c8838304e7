#pragma once
// The trainer's standard callbacks:
//   EarlyStopping     stop when a monitored metric has not improved for `patience` epochs; restore
//                     the best weights at the end (course: "early stopping").
//   Checkpoint        checkpoints/last.pt every epoch and best.pt on improvement, atomically; each
//                     holds what Trainer::resume needs for an exact continuation.
//   SnapshotEnsemble  a snapshot of the weights at each learning-rate restart (the minimum of a
//                     cosine cycle: Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for free").
//   NonFiniteGuard    stops with a clear message when the loss becomes NaN or Inf.
//   InitialLossCheck  warns when the first loss is far from ln(C), the loss of uniform predictions.
//   CsvLogger / TensorBoardLogger  one row / one scalar per metric and epoch.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <tlkit/core/tensorboard.h>
#include <tlkit/train/callback.h>
#include <tlkit/train/network.h>

namespace tlkit::train {

enum class Mode { kMin, kMax, kAuto };  // kAuto: max for names containing "acc", else min

// Tracks the best value of a metric: improved when better than best by more than min_delta.
class MetricTracker {
 public:
  MetricTracker(std::string monitor, Mode mode, double min_delta);
  bool update(const Metrics& metrics);  // true if this epoch improved on the best
  const std::string& monitor() const { return monitor_; }
  std::optional<double> best() const { return best_; }
  std::int64_t best_epoch() const { return best_epoch_; }
  std::int64_t epochs_without_improvement() const { return wait_; }
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  std::string monitor_;
  bool maximize_;
  double min_delta_;
  std::optional<double> best_;
  std::int64_t best_epoch_ = -1, wait_ = 0;
};

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  Mode mode = Mode::kAuto;
  std::int64_t patience = 5;
  double min_delta = 0;
  bool restore_best = true;
  bool keep_best = false;  // keep a copy of the best weights even without restoring them
};

class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  std::string name() const override { return "early_stopping"; }
  bool on_epoch_end(TrainContext& context) override;
  void on_train_end(TrainContext& context) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  const MetricTracker& tracker() const { return tracker_; }
  std::optional<std::int64_t> stopped_epoch() const { return stopped_epoch_; }  // 1-based
  // The weights of the best epoch so far (kept when restore_best or keep_best is set).
  const NamedTensors& best_state() const { return best_state_; }

 private:
  EarlyStoppingOptions options_;
  MetricTracker tracker_;
  NamedTensors best_state_;
  std::optional<std::int64_t> stopped_epoch_;
};

class Checkpoint : public Callback {
 public:
  Checkpoint(std::filesystem::path dir, std::string monitor = "val_loss", Mode mode = Mode::kAuto);
  std::string name() const override { return "checkpoint"; }
  bool on_epoch_end(TrainContext& context) override;
  void save(torch::serialize::OutputArchive& archive) const override { tracker_.save(archive); }
  void load(torch::serialize::InputArchive& archive) override { tracker_.load(archive); }
  std::filesystem::path last_path() const { return dir_ / "last.pt"; }
  std::filesystem::path best_path() const { return dir_ / "best.pt"; }
  const MetricTracker& tracker() const { return tracker_; }

 private:
  std::filesystem::path dir_;
  MetricTracker tracker_;
};

// Weights-only files for snapshots and exports of a state: one archive of named tensors.
void save_state(const NamedTensors& state, const std::filesystem::path& path);
NamedTensors load_state(const std::filesystem::path& path);

class SnapshotEnsemble : public Callback {
 public:
  // dir: where snapshot_<k>.pt files go (empty = keep in memory only). max_snapshots: keep the last M.
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

class NonFiniteGuard : public Callback {
 public:
  std::string name() const override { return "non_finite_guard"; }
  void on_batch_end(TrainContext& context) override;
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
