#include <tlkit/train/callbacks.h>

#include <cmath>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/trainer.h>

namespace tlkit::train {
namespace {

void write_state(torch::serialize::OutputArchive& archive, const std::string& prefix,
                 const NamedTensors& state) {
  std::string names;
  for (size_t i = 0; i < state.size(); ++i) {
    archive.write(prefix + std::to_string(i), state[i].second, /*is_buffer=*/true);
    names += state[i].first + "\n";
  }
  archive.write(prefix + "names", c10::IValue(names));
}

NamedTensors read_state(torch::serialize::InputArchive& archive, const std::string& prefix) {
  c10::IValue names_value;
  archive.read(prefix + "names", names_value);
  NamedTensors state;
  std::istringstream names(names_value.toStringRef());
  std::string name;
  for (size_t i = 0; std::getline(names, name); ++i) {
    at::Tensor tensor;
    archive.read(prefix + std::to_string(i), tensor, /*is_buffer=*/true);
    state.emplace_back(name, tensor);
  }
  return state;
}

double current_lr(const TrainContext& context) {
  return context.optimizer.param_groups().front().options().get_lr();
}

}  // namespace

// ------------------------------------------------------------------------- MetricTracker
bool maximizes(const std::string& monitor, Mode mode) {
  if (mode == Mode::kAuto) return monitor.find("acc") != std::string::npos;
  return mode == Mode::kMax;
}

bool improves(double value, double than, bool maximize, double min_delta) {
  if (!std::isfinite(value)) return false;
  if (!std::isfinite(than)) return true;
  return maximize ? value > than + min_delta : value < than - min_delta;
}

double monitored_accuracy(const Evaluation& e, const std::string& monitor) {
  if (monitor == "val_balanced_acc" && e.confusion.defined()) return e.balanced_accuracy();
  return e.accuracy;
}

bool better(const Evaluation& a, const Evaluation& b, const std::string& monitor) {
  if (maximizes(monitor, Mode::kAuto)) {
    const double x = monitored_accuracy(a, monitor), y = monitored_accuracy(b, monitor);
    if (improves(x, y, true)) return true;
    if (improves(y, x, true) || !std::isfinite(x)) return false;
  }
  return improves(a.loss, b.loss, false);
}

MetricTracker::MetricTracker(std::string monitor, Mode mode, double min_delta)
    : monitor_(std::move(monitor)), maximize_(maximizes(monitor_, mode)), min_delta_(min_delta) {
  TLKIT_CHECK(!monitor_.empty(), "the monitored metric needs a name, e.g. val_loss or val_acc");
  TLKIT_CHECK(min_delta_ >= 0, "min_delta must be >= 0, got ", min_delta_);
}

bool MetricTracker::update(const Metrics& metrics) {
  const double value = metrics.at(monitor_);
  const auto epoch = static_cast<std::int64_t>(metrics.get("epoch").value_or(0));
  // improved: value < best - min_delta (minimising), value > best + min_delta (maximising)
  const bool improved = !best_ ? std::isfinite(value) : improves(value, *best_, maximize_, min_delta_);
  if (improved) {
    best_ = value;
    best_epoch_ = epoch;
    wait_ = 0;
  } else {
    ++wait_;
  }
  return improved;
}

void MetricTracker::save(torch::serialize::OutputArchive& archive) const {
  archive.write("monitor", c10::IValue(monitor_));
  archive.write("has_best", c10::IValue(best_.has_value()));
  archive.write("best", c10::IValue(best_.value_or(0.0)));
  archive.write("best_epoch", c10::IValue(best_epoch_));
  archive.write("wait", c10::IValue(wait_));
}

void MetricTracker::load(torch::serialize::InputArchive& archive) {
  c10::IValue value;
  if (archive.try_read("monitor", value)) {
    TLKIT_CHECK(value.toStringRef() == monitor_, "the checkpoint monitored ", value.toStringRef(),
                ", this run ", monitor_, "; resume with --monitor ", value.toStringRef(),
                " or start a new run");
  }
  archive.read("has_best", value);
  const bool has_best = value.toBool();
  archive.read("best", value);
  best_ = has_best ? std::optional<double>(value.toDouble()) : std::nullopt;
  archive.read("best_epoch", value);
  best_epoch_ = value.toInt();
  archive.read("wait", value);
  wait_ = value.toInt();
}

// ------------------------------------------------------------------------- EarlyStopping
EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : options_(options) {
  TLKIT_CHECK(options_.patience >= 1, "early-stopping patience must be >= 1, got ",
              options_.patience);
}

bool EarlyStopping::on_epoch_end(TrainContext& context) {
  if (context.validation_skipped) return false;
  TLKIT_CHECK(
      context.monitor != nullptr && context.metrics.get(context.monitor->monitor()).has_value(),
      "early stopping watches '", context.monitor ? context.monitor->monitor() : std::string("?"),
      "', which this run does not compute (is there validation data?)");
  const auto& tracker = *context.monitor;
  // Epochs since the best, not validations without improvement: the same when every epoch is
  // validated, and patience keeps its meaning when only every N-th is.
  const auto waited = tracker.best() ? context.epoch + 1 - tracker.best_epoch()
                                     : tracker.epochs_without_improvement();
  if (waited < options_.patience) return false;
  stopped_epoch_ = context.epoch + 1;
  context.stop_reason = "early stopping: " + tracker.monitor() + " did not improve for " +
                        std::to_string(options_.patience) + " epochs (best " +
                        std::to_string(*tracker.best()) + " at epoch " +
                        std::to_string(tracker.best_epoch()) + ")";
  return true;
}

void EarlyStopping::save(torch::serialize::OutputArchive& archive) const {
  archive.write("stopped_epoch", c10::IValue(stopped_epoch_.value_or(-1)));
}

void EarlyStopping::load(torch::serialize::InputArchive& archive) {
  c10::IValue value;
  if (!archive.try_read("stopped_epoch", value)) return;
  stopped_epoch_ = value.toInt() >= 0 ? std::optional<std::int64_t>(value.toInt()) : std::nullopt;
}

// ------------------------------------------------------------------------- BestWeights
BestWeights::BestWeights(std::filesystem::path file, bool restore_at_end)
    : file_(std::move(file)), restore_at_end_(restore_at_end) {}

bool BestWeights::on_epoch_end(TrainContext& context) {
  if (!context.improved) return false;
  weights_ = clone_state(context.network);
  epoch_ = context.epoch + 1;
  if (!file_.empty()) save_state(weights_, file_, epoch_);
  return false;
}

void BestWeights::on_train_end(TrainContext& context) {
  if (!restore_at_end_ || weights_.empty()) return;
  copy_state(context.network, weights_);
  logger()->info("restored the weights of epoch {}", epoch_);
}

void BestWeights::save(torch::serialize::OutputArchive& archive) const {
  archive.write("epoch", c10::IValue(epoch_));
  archive.write("file", c10::IValue(file_.filename().string()));
}

void BestWeights::load(torch::serialize::InputArchive& archive) {
  c10::IValue value;
  archive.read("epoch", value);
  epoch_ = value.toInt();
  weights_.clear();
  if (epoch_ < 0) return;
  TLKIT_CHECK(!file_.empty() && std::filesystem::exists(file_),
              "cannot resume: the best weights of epoch ", epoch_, " should be in '",
              file_.string(), "', which does not exist; start a new run");
  std::int64_t file_epoch = -1;
  weights_ = load_state(file_, &file_epoch);
  if (file_epoch != epoch_) {
    // Killed after best.pt was written and before the next last.pt (which need not follow every
    // epoch): the file is ahead of the checkpoint; the resumed epochs find that best again.
    logger()->info(
        "'{}' holds the weights of epoch {}, the checkpoint's best is epoch {}; using the file",
        file_.string(), file_epoch, epoch_);
    epoch_ = file_epoch;
  }
}

// ------------------------------------------------------------------------- Checkpoint
Checkpoint::Checkpoint(std::filesystem::path dir) : dir_(std::move(dir)) {}

void Checkpoint::write(TrainContext& context) {
  const auto start = std::chrono::steady_clock::now();
  context.trainer.save_checkpoint(last_path());
  written_at_ = std::chrono::steady_clock::now();
  write_seconds_ = std::chrono::duration<double>(written_at_ - start).count();
  written_ = true;
}

bool Checkpoint::on_epoch_end(TrainContext& context) {
  const bool must =
      !written_ || context.epoch + 1 >= context.epochs || !context.stop_reason.empty();
  const double since =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - written_at_).count();
  epoch_end_written_ = must || since >= 10 * write_seconds_;
  if (epoch_end_written_) write(context);
  return false;
}

void Checkpoint::on_interrupt(TrainContext& context) {
  if (context.batch > 0 || !epoch_end_written_) write(context);
  context.stop_reason = "checkpoint " + last_path().string() +
                        " holds it: the same command with --resume continues from there";
}

// ------------------------------------------------------------------------- weights-only files
void save_state(const NamedTensors& state, const std::filesystem::path& path, std::int64_t epoch) {
  if (!is_main_process()) return;  // data parallel: every rank holds these weights; rank 0 writes
  torch::serialize::OutputArchive archive;
  write_state(archive, "t", state);
  archive.write("epoch", c10::IValue(epoch));
  AtomicFile file(path);
  archive.save_to([&file](const void* data, size_t size) { return file.write(data, size); });
  file.commit();
}

NamedTensors load_state(const std::filesystem::path& path, std::int64_t* epoch) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
  } catch (const c10::Error& e) {
    fail("cannot read weights '", path.string(), "': ", e.what_without_backtrace());
  }
  if (epoch) {
    c10::IValue value;
    *epoch = archive.try_read("epoch", value) ? value.toInt() : -1;
  }
  return read_state(archive, "t");
}

// ------------------------------------------------------------------------- SnapshotEnsemble
SnapshotEnsemble::SnapshotEnsemble(std::filesystem::path dir, std::int64_t max_snapshots)
    : dir_(std::move(dir)), max_snapshots_(max_snapshots) {}

void SnapshotEnsemble::on_train_begin(TrainContext& context) {
  if (last_lr_ < 0) last_lr_ = current_lr(context);
  if (last_cycle_ < 0 && context.scheduler && context.scheduler->cycle())
    last_cycle_ = *context.scheduler->cycle();
}

// A restart: the schedule's cycle() grew (SGDR), or, for schedules that do not count cycles, the
// lr rose again after falling (a warm-up's first rise is not a restart). Either way the weights
// in hand were trained at the bottom of the cycle that just ended.
void SnapshotEnsemble::check_restart(TrainContext& context, std::int64_t epoch_number) {
  const double lr = current_lr(context);
  bool restarted = false;
  const auto cycle = context.scheduler ? context.scheduler->cycle() : std::nullopt;
  if (cycle) {
    restarted = last_cycle_ >= 0 && *cycle > last_cycle_;
    last_cycle_ = *cycle;
  } else if (lr < last_lr_ * (1 - 1e-12)) {
    declined_ = true;
  } else if (lr > last_lr_ * (1 + 1e-12) && declined_) {
    restarted = true;
    declined_ = false;
  }
  last_lr_ = lr;
  if (!restarted) return;
  snapshots_.push_back(clone_state(context.network));
  epochs_.push_back(epoch_number);
  if (!dir_.empty()) {
    files_.push_back("snapshot_" + std::to_string(snapshots_.size()) + ".pt");
    save_state(snapshots_.back(), dir_ / files_.back(), epoch_number);
  }
  if (max_snapshots_ > 0 && static_cast<std::int64_t>(snapshots_.size()) > max_snapshots_) {
    snapshots_.erase(snapshots_.begin());
    epochs_.erase(epochs_.begin());
    if (!files_.empty()) files_.erase(files_.begin());
  }
  logger()->info("snapshot {} taken at the end of a cycle (epoch {})", snapshots_.size(),
                 epoch_number);
}

void SnapshotEnsemble::on_batch_end(TrainContext& context) {
  check_restart(context, context.epoch + 1);
}

bool SnapshotEnsemble::on_epoch_end(TrainContext& context) {
  check_restart(context, context.epoch + 1);
  return false;
}

void SnapshotEnsemble::save(torch::serialize::OutputArchive& archive) const {
  archive.write("last_lr", c10::IValue(last_lr_));
  archive.write("declined", c10::IValue(declined_));
  archive.write("last_cycle", c10::IValue(last_cycle_));
  archive.write("count", c10::IValue(static_cast<std::int64_t>(snapshots_.size())));
  for (size_t k = 0; k < snapshots_.size(); ++k) {
    archive.write("epoch_" + std::to_string(k), c10::IValue(epochs_[k]));
    // Snapshots on disk are referenced by path; in-memory ones travel inside the checkpoint.
    if (!files_.empty()) {
      archive.write("file_" + std::to_string(k), c10::IValue(files_[k]));
    } else {
      write_state(archive, "snapshot_" + std::to_string(k) + "_", snapshots_[k]);
    }
  }
}

void SnapshotEnsemble::load(torch::serialize::InputArchive& archive) {
  c10::IValue value;
  archive.read("last_lr", value);
  last_lr_ = value.toDouble();
  archive.read("declined", value);
  declined_ = value.toBool();
  archive.read("last_cycle", value);
  last_cycle_ = value.toInt();
  archive.read("count", value);
  const auto count = value.toInt();
  snapshots_.clear();
  epochs_.clear();
  files_.clear();
  for (std::int64_t k = 0; k < count; ++k) {
    archive.read("epoch_" + std::to_string(k), value);
    epochs_.push_back(value.toInt());
    if (archive.try_read("file_" + std::to_string(k), value)) {
      // A name relative to this run's snapshot folder, so a moved run folder resumes.
      files_.push_back(std::filesystem::path(value.toStringRef()).filename().string());
      snapshots_.push_back(load_state(dir_ / files_.back()));
    } else {
      snapshots_.push_back(read_state(archive, "snapshot_" + std::to_string(k) + "_"));
    }
  }
}

}  // namespace tlkit::train
