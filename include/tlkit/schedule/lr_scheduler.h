#pragma once
// The base of every tlkit learning-rate schedule.
//
// LRScheduler drives the learning rate of each param group of ANY torch::optim::Optimizer through
// `options().get_lr()` / `set_lr()`: one lr per group, so per-layer learning rates keep their
// ratios. It mirrors Python's torch.optim.lr_scheduler._LRScheduler (torch 1.13):
//   - construction performs the initial step (last_epoch 0) and sets the lr of step 0;
//   - step() advances last_epoch by one and applies the chainable formula (get_lr in torch), which
//     reads the group's current lr, so results match torch to the last bit;
//   - step_to(epoch) is torch's step(epoch): it jumps to an epoch using the closed form;
//   - each group has a base lr (torch's group['initial_lr']): the lr the group had when the first
//     scheduler attached to this optimizer was built (shared by every scheduler alive on it, as
//     torch shares group['initial_lr'], so a SequentialLR of schedulers built one after the
//     other sees the original rates);
//   - save()/load() write and read the state with a format version; load() also re-applies the
//     last lrs to the optimizer, so a restored scheduler continues exactly.
// Usage: optimizer.step(); scheduler.step();  (once per epoch or once per iteration)

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

namespace tlkit::schedule {

class SequentialLR;

// Version of the archive layout written by LRScheduler::save(); load() rejects any other.
constexpr std::int64_t kScheduleFormatVersion = 1;

class LRScheduler {
 public:
  explicit LRScheduler(torch::optim::Optimizer& optimizer);
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // The class name (as in torch: "StepLR", "OneCycleLR", ...); also the type tag in archives.
  virtual std::string name() const = 0;

  // Advances one epoch (or iteration) and sets each group's lr.
  virtual void step();
  // torch's step(epoch): jumps to `epoch` using the closed form where the schedule has one.
  // Only CosineAnnealingWarmRestarts accepts a fractional epoch.
  virtual void step_to(double epoch);
  // For loops that always have a validation metric: metric-driven schedules (ReduceLROnPlateau)
  // use it, every other schedule ignores it and calls step().
  virtual void step_with_metric(double metric);
  // True when the schedule needs a metric each step (step_with_metric).
  virtual bool uses_metric() const { return false; }
  // The index of the current cycle (0 = the first) for schedules that restart, e.g. SGDR;
  // std::nullopt for the others. Snapshot ensembles take a snapshot when it grows.
  virtual std::optional<std::int64_t> cycle() const { return std::nullopt; }

  // The lr of each param group set by the last step (or by construction).
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  std::int64_t last_epoch() const { return last_epoch_; }
  // Each group's base lr (torch's initial_lr).
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  torch::optim::Optimizer& optimizer() const { return optimizer_; }

  // Multiplies every learning rate the schedule gives, now and from here on (its base lrs and its
  // last lrs), by `factor`: a rollback after a blow-up lowers the whole schedule.
  virtual void scale_lrs(double factor);

  // Writes the scheduler's state (format version, type, counters, lrs, schedule-specific state).
  void save(torch::serialize::OutputArchive& archive) const;
  // Restores a state written by save() for the same schedule type and number of param groups,
  // then sets each group's lr back to the restored last lr.
  void load(torch::serialize::InputArchive& archive);

 protected:
  // The chainable update (torch's get_lr): new lrs from the current ones and last_epoch_.
  virtual std::vector<double> compute_lr() = 0;
  // The closed form used by step_to (torch's _get_closed_form_lr); defaults to compute_lr().
  virtual std::vector<double> closed_form_lr() { return compute_lr(); }
  // Schedule-specific state beyond the common counters.
  virtual void save_state(torch::serialize::OutputArchive& archive) const;
  virtual void load_state(torch::serialize::InputArchive& archive);
  // Called after load() has set the lrs (OneCycleLR restores its momentum here).
  virtual void after_load() {}

  // Derived constructors call this last: torch's _initial_step (step_count 0, then step()).
  void initial_step();
  // Replaces the base lrs and the shared initial lrs of this optimizer (OneCycleLR does this).
  void set_base_lrs(std::vector<double> base_lrs);
  // The current lr of every param group.
  std::vector<double> group_lrs() const;
  // Sets every group's lr and records them as the last lrs.
  void apply_lrs(const std::vector<double>& lrs);
  std::size_t num_groups() const { return optimizer_.param_groups().size(); }
  // Throws when groups were added to or removed from the optimizer after construction.
  void check_groups() const;

  std::int64_t last_epoch_ = -1;
  std::int64_t step_count_ = 0;
  std::vector<double> last_lr_;

 private:
  friend class SequentialLR;  // rewinds the schedules it wraps, as torch's SequentialLR does

  torch::optim::Optimizer& optimizer_;
  std::vector<double> base_lrs_;
};

}  // namespace tlkit::schedule
