// Follows torch.optim.lr_scheduler.SequentialLR (torch 1.13).

#include <tlkit/schedule/sequential.h>

#include <algorithm>

#include <c10/util/Exception.h>

#include <tlkit/core/error.h>

#include "archive_util.h"

namespace tlkit::schedule {
namespace {

std::string sub_key(std::size_t index) { return "scheduler_" + std::to_string(index); }

void check_arguments(const torch::optim::Optimizer& optimizer,
                     const std::vector<std::shared_ptr<LRScheduler>>& schedulers,
                     const std::vector<std::int64_t>& milestones) {
  TLKIT_CHECK(!schedulers.empty(), "SequentialLR needs at least one schedule");
  for (std::size_t i = 0; i < schedulers.size(); ++i) {
    TLKIT_CHECK(schedulers[i] != nullptr, "SequentialLR: schedule ", i, " is null");
    TLKIT_CHECK(&schedulers[i]->optimizer() == &optimizer, "SequentialLR: schedule ", i, " (",
                schedulers[i]->name(),
                ") belongs to another optimizer; build every schedule on the same one");
    TLKIT_CHECK(!schedulers[i]->uses_metric(), "SequentialLR cannot run ", schedulers[i]->name(),
                ", which needs a metric; use it on its own");
  }
  TLKIT_CHECK(milestones.size() + 1 == schedulers.size(),
              "SequentialLR needs one milestone fewer than schedules: got ", schedulers.size(),
              " schedules and ", milestones.size(), " milestones");
  for (std::size_t i = 0; i < milestones.size(); ++i) {
    TLKIT_CHECK(milestones[i] > 0 && (i == 0 || milestones[i] > milestones[i - 1]),
                "SequentialLR: milestones must be positive and increasing, got ", milestones[i],
                " at position ", i);
  }
}

}  // namespace

SequentialLR::SequentialLR(torch::optim::Optimizer& optimizer,
                           std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<std::int64_t> milestones)
    : LRScheduler(optimizer),
      schedulers_(std::move(schedulers)),
      milestones_(std::move(milestones)) {
  check_arguments(optimizer, schedulers_, milestones_);
  last_epoch_ = 0;
  // As torch: back to the base lrs, undo the construction-time step of every wrapped schedule,
  // then restart the first one.
  apply_lrs(base_lrs());
  for (auto& scheduler : schedulers_) scheduler->last_epoch_ -= 1;
  schedulers_.front()->initial_step();
  last_lr_ = schedulers_.front()->get_last_lr();
}

void SequentialLR::step() {
  check_groups();
  last_epoch_ += 1;
  const auto index = static_cast<std::size_t>(
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin());
  auto& scheduler = *schedulers_[index];
  if (index > 0 && milestones_[index - 1] == last_epoch_) {
    scheduler.step_to(0);
  } else {
    scheduler.step();
  }
  last_lr_ = scheduler.get_last_lr();
}

std::optional<std::int64_t> SequentialLR::cycle() const {
  const auto index = static_cast<std::size_t>(
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin());
  return schedulers_[index]->cycle();
}

void SequentialLR::step_to(double /*epoch*/) {
  fail("SequentialLR cannot jump to an epoch (torch's SequentialLR cannot either); call step()");
}

void SequentialLR::save_state(torch::serialize::OutputArchive& archive) const {
  detail::write_int(archive, "num_schedulers", static_cast<std::int64_t>(schedulers_.size()));
  for (std::size_t i = 0; i < schedulers_.size(); ++i) {
    torch::serialize::OutputArchive sub;
    schedulers_[i]->save(sub);
    archive.write(sub_key(i), sub);
  }
}

void SequentialLR::load_state(torch::serialize::InputArchive& archive) {
  const auto count = detail::read_int(archive, "num_schedulers", name());
  TLKIT_CHECK(count == static_cast<std::int64_t>(schedulers_.size()), "SequentialLR state holds ",
              count, " schedules but this SequentialLR has ", schedulers_.size(),
              "; build it with the same schedules");
  for (std::size_t i = 0; i < schedulers_.size(); ++i) {
    torch::serialize::InputArchive sub;
    bool found = false;
    try {
      found = archive.try_read(sub_key(i), sub);
    } catch (const c10::Error& e) {
      fail("SequentialLR state: cannot read schedule ", i, ": ", e.what_without_backtrace());
    }
    TLKIT_CHECK(found, "SequentialLR state has no '", sub_key(i), "'");
    schedulers_[i]->load(sub);
  }
}

void SequentialLR::scale_lrs(double factor) {
  for (auto& scheduler : schedulers_) {
    auto base = scheduler->base_lrs_;
    for (auto& lr : base) lr *= factor;
    scheduler->base_lrs_ = std::move(base);
    for (auto& lr : scheduler->last_lr_) lr *= factor;
  }
  LRScheduler::scale_lrs(factor);
}

}  // namespace tlkit::schedule
