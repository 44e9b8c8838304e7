#pragma once
// Cosine annealing, with and without warm restarts (Loshchilov & Hutter 2017, "SGDR: Stochastic
// Gradient Descent with Warm Restarts"), with torch 1.13's names, defaults and exact numbers.

#include <cstdint>
#include <vector>

#include <tlkit/schedule/lr_scheduler.h>

namespace tlkit::schedule {

// Half a cosine from the base lr down to eta_min over T_max epochs:
//   lr_t = eta_min + (lr0 - eta_min) * (1 + cos(pi * t / T_max)) / 2
// computed, like torch, with the chainable recursion
//   lr_t = (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max)) * (lr_{t-1} - eta_min) + eta_min
// and, past T_max, the same cosine continued (the lr rises again over the next T_max epochs).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(torch::optim::Optimizer& optimizer, std::int64_t T_max, double eta_min = 0);
  std::string name() const override { return "CosineAnnealingLR"; }

 protected:
  std::vector<double> compute_lr() override;
  std::vector<double> closed_form_lr() override;

 private:
  std::int64_t T_max_;
  double eta_min_;
};

// SGDR: cosine annealing restarted every T_i epochs, T_0 first, each cycle T_mult times longer:
//   lr = eta_min + (lr0 - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
// where T_cur counts the epochs since the last restart. step() advances one epoch; step_to(e)
// accepts fractional epochs (e.g. epoch + batch / batches_per_epoch, stepping once per iteration).
// The minima just before each restart are where snapshot ensembles take their snapshots.
class CosineAnnealingWarmRestarts : public LRScheduler {
 public:
  CosineAnnealingWarmRestarts(torch::optim::Optimizer& optimizer, std::int64_t T_0,
                              std::int64_t T_mult = 1, double eta_min = 0);
  std::string name() const override { return "CosineAnnealingWarmRestarts"; }

  void step() override;
  void step_to(double epoch) override;

  // The length of the current cycle and the (possibly fractional) epochs since its restart.
  std::int64_t T_i() const { return T_i_; }
  double T_cur() const { return T_cur_; }
  // Restarts so far: the cycle the schedule is in.
  std::optional<std::int64_t> cycle() const override;

 protected:
  std::vector<double> compute_lr() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

 private:
  std::int64_t T_0_;
  std::int64_t T_mult_;
  double eta_min_;
  std::int64_t T_i_;
  double T_cur_ = -1;
};

}  // namespace tlkit::schedule
