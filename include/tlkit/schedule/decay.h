#pragma once
// Step-wise and multiplicative schedules, with the names, arguments, defaults and exact numbers of
// torch.optim.lr_scheduler (torch 1.13). `t` below is last_epoch, `lr0` a group's base lr. Each
// one is implemented with torch's chainable recursion (new lr from the current lr), so it also
// composes with other changes of the lr, exactly like torch's.

#include <cstdint>
#include <vector>

#include <tlkit/schedule/lr_scheduler.h>

namespace tlkit::schedule {

// Leaves every lr unchanged ("constant" in make_scheduler): lr_t = lr0.
class FixedLR : public LRScheduler {
 public:
  explicit FixedLR(torch::optim::Optimizer& optimizer);
  std::string name() const override { return "FixedLR"; }

 protected:
  std::vector<double> compute_lr() override;
};

// Multiplies the lr by gamma every step_size epochs: lr_t = lr0 * gamma^floor(t / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(torch::optim::Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);
  std::string name() const override { return "StepLR"; }

 protected:
  std::vector<double> compute_lr() override;
  std::vector<double> closed_form_lr() override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

// Multiplies the lr by gamma at each milestone (a milestone listed k times multiplies by gamma^k):
// lr_t = lr0 * gamma^(number of milestones <= t).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(torch::optim::Optimizer& optimizer, std::vector<std::int64_t> milestones,
              double gamma = 0.1);
  std::string name() const override { return "MultiStepLR"; }

 protected:
  std::vector<double> compute_lr() override;
  std::vector<double> closed_form_lr() override;

 private:
  std::vector<std::int64_t> milestones_;  // sorted
  double gamma_;
};

// Multiplies the lr by `factor` until total_iters, then restores it:
// lr_t = lr0 * factor for t < total_iters, lr0 afterwards.
class ConstantLR : public LRScheduler {
 public:
  ConstantLR(torch::optim::Optimizer& optimizer, double factor = 1.0 / 3,
             std::int64_t total_iters = 5);
  std::string name() const override { return "ConstantLR"; }

 protected:
  std::vector<double> compute_lr() override;
  std::vector<double> closed_form_lr() override;

 private:
  double factor_;
  std::int64_t total_iters_;
};

// Scales the lr by a factor going linearly from start_factor to end_factor over total_iters
// (the usual linear warm-up): lr_t = lr0 * (s + (e - s) * min(t, T) / T).
class LinearLR : public LRScheduler {
 public:
  LinearLR(torch::optim::Optimizer& optimizer, double start_factor = 1.0 / 3,
           double end_factor = 1.0, std::int64_t total_iters = 5);
  std::string name() const override { return "LinearLR"; }

 protected:
  std::vector<double> compute_lr() override;
  std::vector<double> closed_form_lr() override;

 private:
  double start_factor_;
  double end_factor_;
  std::int64_t total_iters_;
};

// Multiplies the lr by gamma every epoch: lr_t = lr0 * gamma^t.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(torch::optim::Optimizer& optimizer, double gamma);
  std::string name() const override { return "ExponentialLR"; }

 protected:
  std::vector<double> compute_lr() override;
  std::vector<double> closed_form_lr() override;

 private:
  double gamma_;
};

// Polynomial decay to zero over total_iters: lr_t = lr0 * (1 - min(t, T) / T)^power.
class PolynomialLR : public LRScheduler {
 public:
  PolynomialLR(torch::optim::Optimizer& optimizer, std::int64_t total_iters = 5,
               double power = 1.0);
  std::string name() const override { return "PolynomialLR"; }

 protected:
  std::vector<double> compute_lr() override;
  std::vector<double> closed_form_lr() override;

 private:
  std::int64_t total_iters_;
  double power_;
};

}  // namespace tlkit::schedule
