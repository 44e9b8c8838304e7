#pragma once
// OneCycleLR: the 1cycle policy (Smith & Topin 2017, "Super-Convergence: Very Fast Training of
// Neural Networks Using Large Learning Rates"), with torch 1.13's arguments, defaults and numbers.
//
// Per param group: initial_lr = max_lr / div_factor, min_lr = initial_lr / final_div_factor.
// Two phases (default, as fastai): initial_lr -> max_lr over the first pct_start of total_steps,
// then max_lr -> min_lr. three_phase: initial -> max, max -> initial (symmetric), initial -> min.
// Each phase anneals with a cosine, end + (start - end) / 2 * (1 + cos(pi * pct)), or linearly.
// With cycle_momentum the momentum moves inversely, max_momentum -> base_momentum -> max_momentum:
// `momentum` for SGD / RMSprop-like options, beta1 for Adam-like ones (see momentum.h).
// Step once per batch; stepping past total_steps is an error, as in torch.

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/arg.h>

#include <tlkit/schedule/lr_scheduler.h>

namespace tlkit::schedule {

enum class AnnealStrategy { kCos, kLinear };

struct OneCycleLROptions {
  // One value for every group, or one per group.
  /* implicit */ OneCycleLROptions(std::vector<double> max_lr) : max_lr_(std::move(max_lr)) {}
  /* implicit */ OneCycleLROptions(double max_lr) : max_lr_({max_lr}) {}
  TORCH_ARG(std::vector<double>, max_lr);
  // total_steps, or epochs * steps_per_epoch when total_steps is not given.
  TORCH_ARG(std::optional<std::int64_t>, total_steps) = std::nullopt;
  TORCH_ARG(std::optional<std::int64_t>, epochs) = std::nullopt;
  TORCH_ARG(std::optional<std::int64_t>, steps_per_epoch) = std::nullopt;
  TORCH_ARG(double, pct_start) = 0.3;
  TORCH_ARG(AnnealStrategy, anneal_strategy) = AnnealStrategy::kCos;
  TORCH_ARG(bool, cycle_momentum) = true;
  TORCH_ARG(std::vector<double>, base_momentum) = {0.85};
  TORCH_ARG(std::vector<double>, max_momentum) = {0.95};
  TORCH_ARG(double, div_factor) = 25.;
  TORCH_ARG(double, final_div_factor) = 1e4;
  TORCH_ARG(bool, three_phase) = false;
};

class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(torch::optim::Optimizer& optimizer, OneCycleLROptions options);
  std::string name() const override { return "OneCycleLR"; }

  std::int64_t total_steps() const { return total_steps_; }
  // The momentum (or beta1) of each group set by the last step; empty without cycle_momentum.
  const std::vector<double>& get_last_momentum() const { return last_momentum_; }

 protected:
  std::vector<double> compute_lr() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;
  void after_load() override;

 private:
  struct Phase {
    double end_step;
    int start;  // index into the group's anchors (see GroupAnchors)
    int end;
    int start_momentum;
    int end_momentum;
  };
  // Per group: lrs {initial, max, min} and momenta {max, base}.
  struct GroupAnchors {
    double lr[3];
    double momentum[2];
  };

  double anneal(double start, double end, double pct) const;
  void apply_momentum(const std::vector<double>& momenta);

  OneCycleLROptions options_;
  std::int64_t total_steps_ = 0;
  std::vector<Phase> phases_;
  std::vector<GroupAnchors> anchors_;
  std::vector<double> last_momentum_;
};

}  // namespace tlkit::schedule
