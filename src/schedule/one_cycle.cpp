// Follows torch.optim.lr_scheduler.OneCycleLR (torch 1.13) operation by operation.

#include <tlkit/schedule/one_cycle.h>

#include <cmath>

#include <tlkit/core/error.h>
#include <tlkit/schedule/momentum.h>

#include "archive_util.h"

namespace tlkit::schedule {
namespace {

constexpr double kPi = 3.141592653589793;  // Python's math.pi
enum Lr { kInitialLr = 0, kMaxLr = 1, kMinLr = 2 };
enum Momentum { kMaxMomentum = 0, kBaseMomentum = 1 };

// One value per group from a list holding one value for all groups or one per group.
std::vector<double> per_group(const std::vector<double>& values, std::size_t groups,
                              const char* argument) {
  TLKIT_CHECK(values.size() == 1 || values.size() == groups, "OneCycleLR: expected 1 or ", groups,
              " values for ", argument, " (one per param group), got ", values.size());
  return values.size() == 1 ? std::vector<double>(groups, values[0]) : values;
}

std::int64_t resolve_total_steps(const OneCycleLROptions& o) {
  if (o.total_steps()) {
    TLKIT_CHECK(*o.total_steps() > 0, "OneCycleLR: total_steps must be a positive integer, got ",
                *o.total_steps());
    return *o.total_steps();
  }
  TLKIT_CHECK(o.epochs() && o.steps_per_epoch(),
              "OneCycleLR: give total_steps, or both epochs and steps_per_epoch");
  TLKIT_CHECK(*o.epochs() > 0, "OneCycleLR: epochs must be a positive integer, got ", *o.epochs());
  TLKIT_CHECK(*o.steps_per_epoch() > 0,
              "OneCycleLR: steps_per_epoch must be a positive integer, got ", *o.steps_per_epoch());
  return *o.epochs() * *o.steps_per_epoch();
}

void check_options(const OneCycleLROptions& o) {
  TLKIT_CHECK(o.pct_start() >= 0 && o.pct_start() <= 1,
              "OneCycleLR: pct_start must be in [0, 1], got ", o.pct_start());
  TLKIT_CHECK(std::isfinite(o.div_factor()) && o.div_factor() > 0,
              "OneCycleLR: div_factor must be > 0, got ", o.div_factor());
  TLKIT_CHECK(std::isfinite(o.final_div_factor()) && o.final_div_factor() > 0,
              "OneCycleLR: final_div_factor must be > 0, got ", o.final_div_factor());
  for (double lr : o.max_lr()) {
    TLKIT_CHECK(std::isfinite(lr) && lr > 0, "OneCycleLR: max_lr must be > 0, got ", lr);
  }
  for (const auto* list : {&o.base_momentum(), &o.max_momentum()}) {
    for (double m : *list) {
      TLKIT_CHECK(m >= 0 && m <= 1,
                  "OneCycleLR: base_momentum and max_momentum must be in [0, 1], got ", m);
    }
  }
}

}  // namespace

OneCycleLR::OneCycleLR(torch::optim::Optimizer& optimizer, OneCycleLROptions options)
    : LRScheduler(optimizer), options_(std::move(options)) {
  check_options(options_);
  total_steps_ = resolve_total_steps(options_);
  const double total = static_cast<double>(total_steps_);
  const double pct = options_.pct_start();
  if (options_.three_phase()) {
    phases_ = {{pct * total - 1, kInitialLr, kMaxLr, kMaxMomentum, kBaseMomentum},
               {2 * pct * total - 2, kMaxLr, kInitialLr, kBaseMomentum, kMaxMomentum},
               {total - 1, kInitialLr, kMinLr, kMaxMomentum, kMaxMomentum}};
  } else {
    phases_ = {{pct * total - 1, kInitialLr, kMaxLr, kMaxMomentum, kBaseMomentum},
               {total - 1, kMaxLr, kMinLr, kBaseMomentum, kMaxMomentum}};
  }
  const auto groups = num_groups();
  const auto max_lrs = per_group(options_.max_lr(), groups, "max_lr");
  const auto max_momenta = per_group(options_.max_momentum(), groups, "max_momentum");
  const auto base_momenta = per_group(options_.base_momentum(), groups, "base_momentum");
  anchors_.resize(groups);
  std::vector<double> initial_lrs(groups);
  for (std::size_t i = 0; i < groups; ++i) {
    auto& a = anchors_[i];
    a.lr[kInitialLr] = max_lrs[i] / options_.div_factor();
    a.lr[kMaxLr] = max_lrs[i];
    a.lr[kMinLr] = a.lr[kInitialLr] / options_.final_div_factor();
    a.momentum[kMaxMomentum] = max_momenta[i];
    a.momentum[kBaseMomentum] = base_momenta[i];
    initial_lrs[i] = a.lr[kInitialLr];
  }
  if (options_.cycle_momentum()) {
    for (auto& group : optimizer.param_groups()) {
      TLKIT_CHECK(
          get_momentum(group.options()).has_value(),
          "OneCycleLR with cycle_momentum needs an optimizer with momentum or betas (known: ",
          momentum_accessor_names(),
          "); set cycle_momentum(false) or register the options class "
          "with tlkit::schedule::register_momentum_option<T>() / register_beta1_option<T>()");
    }
    apply_momentum(max_momenta);
  }
  set_base_lrs(std::move(initial_lrs));
  initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal_strategy() == AnnealStrategy::kLinear) return (end - start) * pct + start;
  const double cos_out = std::cos(kPi * pct) + 1;
  return end + (start - end) / 2.0 * cos_out;
}

std::vector<double> OneCycleLR::compute_lr() {
  const double step_num = static_cast<double>(last_epoch_);
  TLKIT_CHECK(last_epoch_ <= total_steps_, "OneCycleLR: tried to step ", last_epoch_ + 1,
              " times but total_steps is ", total_steps_,
              "; build the schedule with the real number of steps");
  std::vector<double> lrs(num_groups());
  std::vector<double> momenta(num_groups());
  for (std::size_t g = 0; g < lrs.size(); ++g) {
    double start_step = 0;
    for (std::size_t i = 0; i < phases_.size(); ++i) {
      const auto& phase = phases_[i];
      if (step_num <= phase.end_step || i + 1 == phases_.size()) {
        const double length = phase.end_step - start_step;
        TLKIT_CHECK(length != 0, "OneCycleLR: total_steps=", total_steps_,
                    " is too small for pct_start=", options_.pct_start(),
                    " (a phase has no steps); use more steps or another pct_start");
        const double pct = (step_num - start_step) / length;
        const auto& a = anchors_[g];
        lrs[g] = anneal(a.lr[phase.start], a.lr[phase.end], pct);
        momenta[g] = anneal(a.momentum[phase.start_momentum], a.momentum[phase.end_momentum], pct);
        break;
      }
      start_step = phase.end_step;
    }
  }
  if (options_.cycle_momentum()) apply_momentum(momenta);
  return lrs;
}

void OneCycleLR::apply_momentum(const std::vector<double>& momenta) {
  auto& groups = optimizer().param_groups();
  for (std::size_t i = 0; i < groups.size(); ++i) set_momentum(groups[i].options(), momenta[i]);
  last_momentum_ = momenta;
}

void OneCycleLR::save_state(torch::serialize::OutputArchive& archive) const {
  detail::write_int(archive, "total_steps", total_steps_);
  detail::write_doubles(archive, "last_momentum", last_momentum_);
}

void OneCycleLR::load_state(torch::serialize::InputArchive& archive) {
  const auto total = detail::read_int(archive, "total_steps", name());
  TLKIT_CHECK(total == total_steps_, "OneCycleLR state is for total_steps=", total,
              " but this schedule has total_steps=", total_steps_,
              "; build it with the same options");
  if (options_.cycle_momentum()) {
    auto momenta = detail::read_doubles(archive, "last_momentum", name());
    TLKIT_CHECK(momenta.size() == num_groups(), "OneCycleLR state has ", momenta.size(),
                " momentum values for ", num_groups(),
                " param groups; was it saved with cycle_momentum off?");
    last_momentum_ = std::move(momenta);
  }
}

void OneCycleLR::after_load() {
  if (options_.cycle_momentum()) apply_momentum(last_momentum_);
}

}  // namespace tlkit::schedule
