// Operation order follows torch/optim/lr_scheduler.py (torch 1.13) so the doubles agree exactly.

#include <tlkit/schedule/cosine.h>

#include <cmath>

#include <tlkit/core/error.h>

#include "archive_util.h"

namespace tlkit::schedule {
namespace {

constexpr double kPi = 3.141592653589793;  // Python's math.pi

void check_eta_min(double eta_min, const char* schedule) {
  TLKIT_CHECK(std::isfinite(eta_min) && eta_min >= 0, schedule, ": eta_min must be >= 0, got ",
              eta_min);
}

}  // namespace

// ---------------------------------------------------------------- CosineAnnealingLR
CosineAnnealingLR::CosineAnnealingLR(torch::optim::Optimizer& optimizer, std::int64_t T_max,
                                     double eta_min)
    : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
  TLKIT_CHECK(T_max >= 1, "CosineAnnealingLR: T_max must be >= 1 (epochs of one half cosine), got ",
              T_max);
  check_eta_min(eta_min, "CosineAnnealingLR");
  initial_step();
}

std::vector<double> CosineAnnealingLR::compute_lr() {
  auto lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  const auto& base = base_lrs();
  const double t = static_cast<double>(last_epoch_);
  const double t_max = static_cast<double>(T_max_);
  for (std::size_t i = 0; i < lrs.size(); ++i) {
    if (step_count_ == 1 && last_epoch_ > 0) {
      lrs[i] = eta_min_ + (base[i] - eta_min_) * (1 + std::cos(t * kPi / t_max)) / 2;
    } else if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
      // The cosine's minimum was at t-1; the recursion's ratio would be 0/0 here.
      lrs[i] = lrs[i] + (base[i] - eta_min_) * (1 - std::cos(kPi / t_max)) / 2;
    } else {
      lrs[i] = (1 + std::cos(kPi * t / t_max)) / (1 + std::cos(kPi * (t - 1) / t_max)) *
                   (lrs[i] - eta_min_) +
               eta_min_;
    }
  }
  return lrs;
}

std::vector<double> CosineAnnealingLR::closed_form_lr() {
  auto lrs = base_lrs();
  const double t = static_cast<double>(last_epoch_);
  for (auto& lr : lrs) {
    lr = eta_min_ + (lr - eta_min_) * (1 + std::cos(kPi * t / static_cast<double>(T_max_))) / 2;
  }
  return lrs;
}

// ---------------------------------------------------------------- CosineAnnealingWarmRestarts
CosineAnnealingWarmRestarts::CosineAnnealingWarmRestarts(torch::optim::Optimizer& optimizer,
                                                         std::int64_t T_0, std::int64_t T_mult,
                                                         double eta_min)
    : LRScheduler(optimizer), T_0_(T_0), T_mult_(T_mult), eta_min_(eta_min), T_i_(T_0) {
  TLKIT_CHECK(T_0 >= 1,
              "CosineAnnealingWarmRestarts: T_0 must be >= 1 (epochs of the first cycle), got ",
              T_0);
  TLKIT_CHECK(T_mult >= 1, "CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got ",
              T_mult);
  check_eta_min(eta_min, "CosineAnnealingWarmRestarts");
  initial_step();
}

std::vector<double> CosineAnnealingWarmRestarts::compute_lr() {
  auto lrs = base_lrs();
  for (auto& lr : lrs) {
    lr = eta_min_ + (lr - eta_min_) * (1 + std::cos(kPi * T_cur_ / static_cast<double>(T_i_))) / 2;
  }
  return lrs;
}

void CosineAnnealingWarmRestarts::step() {
  if (last_epoch_ < 0) {
    step_to(0);
    return;
  }
  check_groups();
  // T_cur += 1; restart when the cycle is complete.
  T_cur_ = T_cur_ + 1;
  if (T_cur_ >= static_cast<double>(T_i_)) {
    T_cur_ = T_cur_ - static_cast<double>(T_i_);
    T_i_ = T_i_ * T_mult_;
  }
  last_epoch_ = last_epoch_ + 1;
  apply_lrs(compute_lr());
}

void CosineAnnealingWarmRestarts::step_to(double epoch) {
  TLKIT_CHECK(std::isfinite(epoch) && epoch >= 0,
              "CosineAnnealingWarmRestarts::step_to: expected a non-negative epoch, got ", epoch);
  check_groups();
  const double t0 = static_cast<double>(T_0_);
  if (epoch >= t0) {
    if (T_mult_ == 1) {
      T_cur_ = std::fmod(epoch, t0);
    } else {
      // The cycle index n, as torch computes it: int(math.log(epoch / T_0 * (T_mult - 1) + 1,
      // T_mult)), where math.log(x, b) is log(x) / log(b).
      const double mult = static_cast<double>(T_mult_);
      const auto n =
          static_cast<std::int64_t>(std::log(epoch / t0 * (mult - 1) + 1) / std::log(mult));
      std::int64_t power = 1;
      for (std::int64_t k = 0; k < n; ++k) power *= T_mult_;
      T_cur_ = epoch - static_cast<double>(T_0_ * (power - 1)) / static_cast<double>(T_mult_ - 1);
      T_i_ = T_0_ * power;
    }
  } else {
    T_i_ = T_0_;
    T_cur_ = epoch;
  }
  last_epoch_ = static_cast<std::int64_t>(std::floor(epoch));
  apply_lrs(compute_lr());
}

std::optional<std::int64_t> CosineAnnealingWarmRestarts::cycle() const {
  if (last_epoch_ < 0) return 0;
  if (T_mult_ == 1) {
    // The current cycle began floor(T_cur) whole epochs ago, at a multiple of T_0.
    const auto start = last_epoch_ - static_cast<std::int64_t>(std::floor(T_cur_));
    return start / T_0_;
  }
  std::int64_t n = 0;
  for (std::int64_t length = T_0_; length < T_i_; length *= T_mult_) ++n;
  return n;
}

void CosineAnnealingWarmRestarts::save_state(torch::serialize::OutputArchive& archive) const {
  detail::write_int(archive, "T_i", T_i_);
  detail::write_double(archive, "T_cur", T_cur_);
}

void CosineAnnealingWarmRestarts::load_state(torch::serialize::InputArchive& archive) {
  T_i_ = detail::read_int(archive, "T_i", name());
  T_cur_ = detail::read_double(archive, "T_cur", name());
  TLKIT_CHECK(T_i_ >= 1, name(), " state: T_i must be >= 1, got ", T_i_);
}

}  // namespace tlkit::schedule
