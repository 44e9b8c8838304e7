// The formulas follow torch/optim/lr_scheduler.py (torch 1.13) operation by operation, so the
// doubles agree bit for bit; `t` is last_epoch_.

#include <tlkit/schedule/decay.h>

#include <algorithm>
#include <cmath>

#include <tlkit/core/error.h>

namespace tlkit::schedule {
namespace {

std::vector<double> scaled(std::vector<double> lrs, double factor) {
  for (auto& lr : lrs) lr *= factor;
  return lrs;
}

void check_positive_finite(double value, const char* schedule, const char* argument) {
  TLKIT_CHECK(std::isfinite(value) && value > 0, schedule, ": ", argument,
              " must be a positive number, got ", value);
}

void check_factor(double value, const char* schedule, const char* argument, bool allow_zero) {
  TLKIT_CHECK(std::isfinite(value) && value <= 1.0 && (allow_zero ? value >= 0 : value > 0),
              schedule, ": ", argument, " must be in ", allow_zero ? "[0, 1]" : "(0, 1]", ", got ",
              value);
}

}  // namespace

// ---------------------------------------------------------------- FixedLR
FixedLR::FixedLR(torch::optim::Optimizer& optimizer) : LRScheduler(optimizer) { initial_step(); }

std::vector<double> FixedLR::compute_lr() { return group_lrs(); }

// ---------------------------------------------------------------- StepLR
StepLR::StepLR(torch::optim::Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  TLKIT_CHECK(step_size >= 1, "StepLR: step_size must be >= 1 (epochs between decays), got ",
              step_size);
  check_positive_finite(gamma, "StepLR", "gamma");
  initial_step();
}

std::vector<double> StepLR::compute_lr() {
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return group_lrs();
  return scaled(group_lrs(), gamma_);
}

std::vector<double> StepLR::closed_form_lr() {
  return scaled(base_lrs(), std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_)));
}

// ---------------------------------------------------------------- MultiStepLR
MultiStepLR::MultiStepLR(torch::optim::Optimizer& optimizer, std::vector<std::int64_t> milestones,
                         double gamma)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  for (auto milestone : milestones_) {
    TLKIT_CHECK(milestone >= 0, "MultiStepLR: milestones must be epochs >= 0, got ", milestone);
  }
  std::sort(milestones_.begin(), milestones_.end());
  check_positive_finite(gamma, "MultiStepLR", "gamma");
  initial_step();
}

std::vector<double> MultiStepLR::compute_lr() {
  const auto hits = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  if (hits == 0) return group_lrs();
  return scaled(group_lrs(), std::pow(gamma_, static_cast<double>(hits)));
}

std::vector<double> MultiStepLR::closed_form_lr() {
  const auto passed =
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  return scaled(base_lrs(), std::pow(gamma_, static_cast<double>(passed)));
}

// ---------------------------------------------------------------- ConstantLR
ConstantLR::ConstantLR(torch::optim::Optimizer& optimizer, double factor, std::int64_t total_iters)
    : LRScheduler(optimizer), factor_(factor), total_iters_(total_iters) {
  // torch accepts factor 0 but then divides by it at total_iters.
  check_factor(factor, "ConstantLR", "factor", /*allow_zero=*/false);
  TLKIT_CHECK(total_iters >= 1, "ConstantLR: total_iters must be >= 1, got ", total_iters);
  initial_step();
}

std::vector<double> ConstantLR::compute_lr() {
  if (last_epoch_ == 0) return scaled(group_lrs(), factor_);
  if (last_epoch_ != total_iters_) return group_lrs();
  return scaled(group_lrs(), 1.0 / factor_);
}

std::vector<double> ConstantLR::closed_form_lr() {
  const double reached = last_epoch_ >= total_iters_ ? 1.0 : 0.0;
  return scaled(base_lrs(), factor_ + reached * (1 - factor_));
}

// ---------------------------------------------------------------- LinearLR
LinearLR::LinearLR(torch::optim::Optimizer& optimizer, double start_factor, double end_factor,
                   std::int64_t total_iters)
    : LRScheduler(optimizer),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
  // As in torch 2.x: a zero start factor would divide by zero in the chainable form.
  check_factor(start_factor, "LinearLR", "start_factor", /*allow_zero=*/false);
  check_factor(end_factor, "LinearLR", "end_factor", /*allow_zero=*/true);
  TLKIT_CHECK(total_iters >= 1, "LinearLR: total_iters must be >= 1, got ", total_iters);
  initial_step();
}

std::vector<double> LinearLR::compute_lr() {
  if (last_epoch_ == 0) return scaled(group_lrs(), start_factor_);
  if (last_epoch_ > total_iters_) return group_lrs();
  const double delta = end_factor_ - start_factor_;
  const double denominator = static_cast<double>(total_iters_) * start_factor_ +
                             static_cast<double>(last_epoch_ - 1) * delta;
  return scaled(group_lrs(), 1. + delta / denominator);
}

std::vector<double> LinearLR::closed_form_lr() {
  const double done = static_cast<double>(std::min(total_iters_, last_epoch_));
  return scaled(base_lrs(), start_factor_ + (end_factor_ - start_factor_) * done /
                                                static_cast<double>(total_iters_));
}

// ---------------------------------------------------------------- ExponentialLR
ExponentialLR::ExponentialLR(torch::optim::Optimizer& optimizer, double gamma)
    : LRScheduler(optimizer), gamma_(gamma) {
  check_positive_finite(gamma, "ExponentialLR", "gamma");
  initial_step();
}

std::vector<double> ExponentialLR::compute_lr() {
  if (last_epoch_ == 0) return group_lrs();
  return scaled(group_lrs(), gamma_);
}

std::vector<double> ExponentialLR::closed_form_lr() {
  return scaled(base_lrs(), std::pow(gamma_, static_cast<double>(last_epoch_)));
}

// ---------------------------------------------------------------- PolynomialLR
PolynomialLR::PolynomialLR(torch::optim::Optimizer& optimizer, std::int64_t total_iters,
                           double power)
    : LRScheduler(optimizer), total_iters_(total_iters), power_(power) {
  TLKIT_CHECK(total_iters >= 1, "PolynomialLR: total_iters must be >= 1, got ", total_iters);
  TLKIT_CHECK(std::isfinite(power) && power >= 0, "PolynomialLR: power must be >= 0, got ", power);
  initial_step();
}

std::vector<double> PolynomialLR::compute_lr() {
  if (last_epoch_ == 0 || last_epoch_ > total_iters_) return group_lrs();
  const double total = static_cast<double>(total_iters_);
  const double ratio = (1.0 - static_cast<double>(last_epoch_) / total) /
                       (1.0 - static_cast<double>(last_epoch_ - 1) / total);
  return scaled(group_lrs(), std::pow(ratio, power_));
}

std::vector<double> PolynomialLR::closed_form_lr() {
  const double done = static_cast<double>(std::min(total_iters_, last_epoch_));
  return scaled(base_lrs(), std::pow(1.0 - done / static_cast<double>(total_iters_), power_));
}

}  // namespace tlkit::schedule
