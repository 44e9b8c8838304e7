// Follows torch.optim.lr_scheduler.ReduceLROnPlateau (torch 1.13).

#include <tlkit/schedule/plateau.h>

#include <cmath>
#include <limits>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

#include "archive_util.h"

namespace tlkit::schedule {
namespace {

void check_options(const ReduceLROnPlateauOptions& o) {
  TLKIT_CHECK(std::isfinite(o.factor()) && o.factor() > 0 && o.factor() < 1,
              "ReduceLROnPlateau: factor must be in (0, 1) (new lr = lr * factor), got ",
              o.factor());
  TLKIT_CHECK(o.patience() >= 0, "ReduceLROnPlateau: patience must be >= 0, got ", o.patience());
  TLKIT_CHECK(o.cooldown() >= 0, "ReduceLROnPlateau: cooldown must be >= 0, got ", o.cooldown());
  TLKIT_CHECK(std::isfinite(o.threshold()) && o.threshold() >= 0,
              "ReduceLROnPlateau: threshold must be >= 0, got ", o.threshold());
  TLKIT_CHECK(std::isfinite(o.eps()) && o.eps() >= 0, "ReduceLROnPlateau: eps must be >= 0, got ",
              o.eps());
  for (double lr : o.min_lr()) {
    TLKIT_CHECK(std::isfinite(lr) && lr >= 0, "ReduceLROnPlateau: min_lr must be >= 0, got ", lr);
  }
}

}  // namespace

ReduceLROnPlateau::ReduceLROnPlateau(torch::optim::Optimizer& optimizer,
                                     ReduceLROnPlateauOptions options)
    : LRScheduler(optimizer), options_(std::move(options)) {
  check_options(options_);
  const auto groups = num_groups();
  const auto& min_lr = options_.min_lr();
  TLKIT_CHECK(min_lr.size() == 1 || min_lr.size() == groups, "ReduceLROnPlateau: expected 1 or ",
              groups, " min_lr values (one per param group), got ", min_lr.size());
  min_lrs_ = min_lr.size() == 1 ? std::vector<double>(groups, min_lr[0]) : min_lr;
  // The worst value for the mode; torch's `mode_worse`.
  const double inf = std::numeric_limits<double>::infinity();
  best_ = options_.mode() == PlateauMode::kMin ? inf : -inf;
  last_epoch_ = 0;
}

bool ReduceLROnPlateau::is_better(double a) const {
  const double threshold = options_.threshold();
  const bool rel = options_.threshold_mode() == ThresholdMode::kRel;
  if (options_.mode() == PlateauMode::kMin)
    return rel ? a < best_ * (1. - threshold) : a < best_ - threshold;
  return rel ? a > best_ * (threshold + 1.) : a > best_ + threshold;
}

void ReduceLROnPlateau::step(double metric) {
  check_groups();
  if (std::isnan(metric))
    logger()->warn("ReduceLROnPlateau: the metric is NaN; counted as no improvement");
  last_epoch_ += 1;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    num_bad_epochs_ += 1;
  }
  if (cooldown_counter_ > 0) {
    cooldown_counter_ -= 1;
    num_bad_epochs_ = 0;  // bad epochs in cooldown are ignored
  }
  if (num_bad_epochs_ > options_.patience()) {
    reduce_lr();
    cooldown_counter_ = options_.cooldown();
    num_bad_epochs_ = 0;
  }
  last_lr_ = group_lrs();
}

void ReduceLROnPlateau::reduce_lr() {
  auto& groups = optimizer().param_groups();
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const double old_lr = groups[i].options().get_lr();
    const double new_lr = std::max(old_lr * options_.factor(), min_lrs_[i]);
    if (old_lr - new_lr > options_.eps()) {
      groups[i].options().set_lr(new_lr);
      logger()->debug("ReduceLROnPlateau: epoch {}: lr of group {} reduced to {:.4e}", last_epoch_,
                      i, new_lr);
    }
  }
}

void ReduceLROnPlateau::step() {
  fail(
      "ReduceLROnPlateau needs the monitored metric each epoch: call step(metric) or "
      "step_with_metric(metric)");
}

void ReduceLROnPlateau::step_to(double /*epoch*/) {
  fail("ReduceLROnPlateau cannot jump to an epoch; call step(metric) once per epoch");
}

void ReduceLROnPlateau::save_state(torch::serialize::OutputArchive& archive) const {
  detail::write_double(archive, "best", best_);
  detail::write_int(archive, "num_bad_epochs", num_bad_epochs_);
  detail::write_int(archive, "cooldown_counter", cooldown_counter_);
}

void ReduceLROnPlateau::load_state(torch::serialize::InputArchive& archive) {
  best_ = detail::read_double(archive, "best", name());
  num_bad_epochs_ = detail::read_int(archive, "num_bad_epochs", name());
  cooldown_counter_ = detail::read_int(archive, "cooldown_counter", name());
}

}  // namespace tlkit::schedule
