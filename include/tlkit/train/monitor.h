#pragma once
// The monitored metric of a run: one name ("val_loss", "val_acc", ...), one direction, one
// min_delta. The trainer owns the run's tracker; early stopping, the best weights, checkpoints and
// the exported model all read the same one, so "best" has one definition.

#include <cstdint>
#include <optional>
#include <string>

#include <torch/serialize/archive.h>

#include <tlkit/train/metrics.h>

namespace tlkit::train {

enum class Mode { kMin, kMax, kAuto };  // kAuto: max for names containing "acc", else min

// True when `monitor` is maximised under `mode`.
bool maximizes(const std::string& monitor, Mode mode);

// The one comparison of a monitored value: `value` improves on `than` when it is better by more
// than `min_delta` (lower when minimising, higher when maximising); NaN never improves. The
// trainer's tracker (early stopping, best weights), stage 1's choices, cross-validation and the
// choice of the exported weights all decide through it.
bool improves(double value, double than, bool maximize, double min_delta = 0);

// The accuracy `monitor` compares: for "val_balanced_acc" the balanced accuracy (mean per-class
// recall) when `e` has a confusion matrix, else `e.accuracy` (fold means and pooled estimates
// made for that monitor hold the balanced accuracy there); for other names `e.accuracy`.
double monitored_accuracy(const Evaluation& e, const std::string& monitor);

// `a` is better than `b` on `monitor` ("val_loss": the lower loss; "val_acc", any name with
// "acc": the higher monitored_accuracy, a tie broken by the lower loss). A non-finite score is
// never better.
bool better(const Evaluation& a, const Evaluation& b, const std::string& monitor);

// Tracks the best value of a metric: improved when better than best by more than min_delta.
class MetricTracker {
 public:
  MetricTracker(std::string monitor = "val_loss", Mode mode = Mode::kAuto, double min_delta = 0);
  bool update(const Metrics& metrics);  // true if this epoch improved on the best
  // True when `value` would count as better than `than` (ignoring min_delta).
  bool better(double value, double than) const { return maximize_ ? value > than : value < than; }
  const std::string& monitor() const { return monitor_; }
  bool maximize() const { return maximize_; }
  double min_delta() const { return min_delta_; }
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

}  // namespace tlkit::train
