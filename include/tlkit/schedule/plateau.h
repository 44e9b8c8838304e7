#pragma once
// ReduceLROnPlateau: multiplies every lr by `factor` when a monitored metric (e.g. validation
// loss) has not improved for more than `patience` epochs; torch 1.13's arguments and numbers.
//
// Each step(metric): improvement means metric < best * (1 - threshold) (mode min, rel),
// metric < best - threshold (min, abs), metric > best * (1 + threshold) (max, rel) or
// metric > best + threshold (max, abs). After `patience` + 1 epochs without improvement,
// lr = max(lr * factor, min_lr) for each group (skipped when the change is below eps), then
// `cooldown` epochs pass in which bad epochs are not counted.

#include <cstdint>
#include <vector>

#include <torch/arg.h>

#include <tlkit/schedule/lr_scheduler.h>

namespace tlkit::schedule {

enum class PlateauMode { kMin, kMax };
enum class ThresholdMode { kRel, kAbs };

struct ReduceLROnPlateauOptions {
  TORCH_ARG(PlateauMode, mode) = PlateauMode::kMin;
  TORCH_ARG(double, factor) = 0.1;
  TORCH_ARG(std::int64_t, patience) = 10;
  TORCH_ARG(double, threshold) = 1e-4;
  TORCH_ARG(ThresholdMode, threshold_mode) = ThresholdMode::kRel;
  TORCH_ARG(std::int64_t, cooldown) = 0;
  // One lower bound for every group, or one per group.
  TORCH_ARG(std::vector<double>, min_lr) = {0.0};
  TORCH_ARG(double, eps) = 1e-8;
};

class ReduceLROnPlateau : public LRScheduler {
 public:
  explicit ReduceLROnPlateau(torch::optim::Optimizer& optimizer,
                             ReduceLROnPlateauOptions options = {});
  std::string name() const override { return "ReduceLROnPlateau"; }

  // One epoch with its metric.
  void step(double metric);
  // Throws: this schedule needs the metric.
  void step() override;
  void step_to(double epoch) override;
  void step_with_metric(double metric) override { step(metric); }
  bool uses_metric() const override { return true; }

  double best() const { return best_; }
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }

 protected:
  std::vector<double> compute_lr() override { return group_lrs(); }
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

 private:
  bool is_better(double metric) const;
  void reduce_lr();

  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;
  double best_;
  std::int64_t num_bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
};

}  // namespace tlkit::schedule
