#include <tlkit/schedule/lr_scheduler.h>

#include <cmath>
#include <mutex>
#include <unordered_map>

#include <tlkit/core/error.h>

#include "archive_util.h"

namespace tlkit::schedule {
namespace {

// torch keeps each group's base lr in group['initial_lr'], set by the first scheduler built on the
// optimizer (setdefault) and seen by every later one. LibTorch's options have no free-form keys,
// so the base lrs live here, shared by the schedulers alive on one optimizer and dropped when the
// last of them is destroyed.
struct SharedInitialLrs {
  int users = 0;
  std::vector<double> lrs;
};

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::unordered_map<const torch::optim::Optimizer*, SharedInitialLrs>& registry() {
  static std::unordered_map<const torch::optim::Optimizer*, SharedInitialLrs> shared;
  return shared;
}

std::vector<double> attach(const torch::optim::Optimizer& optimizer) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& entry = registry()[&optimizer];
  ++entry.users;
  const auto& groups = optimizer.param_groups();
  for (std::size_t i = entry.lrs.size(); i < groups.size(); ++i) {
    entry.lrs.push_back(groups[i].options().get_lr());
  }
  return std::vector<double>(entry.lrs.begin(),
                             entry.lrs.begin() + static_cast<long>(groups.size()));
}

void detach(const torch::optim::Optimizer& optimizer) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = registry().find(&optimizer);
  if (it != registry().end() && --it->second.users <= 0) registry().erase(it);
}

void override_initial(const torch::optim::Optimizer& optimizer, const std::vector<double>& lrs) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[&optimizer].lrs = lrs;
}

}  // namespace

LRScheduler::LRScheduler(torch::optim::Optimizer& optimizer) : optimizer_(optimizer) {
  TLKIT_CHECK(!optimizer.param_groups().empty(),
              "cannot schedule an optimizer without param groups; add parameters first");
  for (const auto& group : optimizer.param_groups()) {
    TLKIT_CHECK(group.has_options(),
                "a param group of the optimizer has no options; "
                "build the optimizer through its constructor or add_param_group");
  }
  base_lrs_ = attach(optimizer_);
  last_lr_ = group_lrs();
}

LRScheduler::~LRScheduler() { detach(optimizer_); }

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::step() {
  check_groups();
  ++step_count_;
  ++last_epoch_;
  apply_lrs(compute_lr());
}

void LRScheduler::step_to(double epoch) {
  TLKIT_CHECK(std::isfinite(epoch) && epoch >= 0 && epoch == std::floor(epoch), name(),
              "::step_to(", epoch,
              "): the epoch must be a whole number >= 0 "
              "(only CosineAnnealingWarmRestarts takes fractional epochs)");
  check_groups();
  ++step_count_;
  last_epoch_ = static_cast<std::int64_t>(epoch);
  apply_lrs(closed_form_lr());
}

void LRScheduler::step_with_metric(double /*metric*/) { step(); }

void LRScheduler::scale_lrs(double factor) {
  TLKIT_CHECK(std::isfinite(factor) && factor > 0, name(), ": lr scale must be positive, got ",
              factor);
  auto base = base_lrs_;
  for (auto& lr : base) lr *= factor;
  set_base_lrs(std::move(base));
  auto lrs = group_lrs();
  for (auto& lr : lrs) lr *= factor;
  apply_lrs(lrs);
}

void LRScheduler::set_base_lrs(std::vector<double> base_lrs) {
  TLKIT_CHECK(base_lrs.size() == num_groups(), name(), ": ", base_lrs.size(), " base lrs for ",
              num_groups(), " param groups");
  base_lrs_ = std::move(base_lrs);
  override_initial(optimizer_, base_lrs_);
}

std::vector<double> LRScheduler::group_lrs() const {
  std::vector<double> lrs;
  lrs.reserve(num_groups());
  for (const auto& group : optimizer_.param_groups()) lrs.push_back(group.options().get_lr());
  return lrs;
}

void LRScheduler::apply_lrs(const std::vector<double>& lrs) {
  TLKIT_CHECK(lrs.size() == num_groups(), name(), ": ", lrs.size(), " lrs for ", num_groups(),
              " param groups");
  auto& groups = optimizer_.param_groups();
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lrs[i]);
  last_lr_ = group_lrs();
}

void LRScheduler::check_groups() const {
  TLKIT_CHECK(num_groups() == base_lrs_.size(), name(), " was built for ", base_lrs_.size(),
              " param groups but the optimizer now has ", num_groups(),
              "; build the scheduler after adding every param group");
}

void LRScheduler::save(torch::serialize::OutputArchive& archive) const {
  detail::write_int(archive, "format_version", kScheduleFormatVersion);
  detail::write_string(archive, "type", name());
  detail::write_int(archive, "last_epoch", last_epoch_);
  detail::write_int(archive, "step_count", step_count_);
  detail::write_doubles(archive, "base_lrs", base_lrs_);
  detail::write_doubles(archive, "last_lr", last_lr_);
  save_state(archive);
}

void LRScheduler::load(torch::serialize::InputArchive& archive) {
  const std::string owner = name();
  c10::IValue version;
  TLKIT_CHECK(archive.try_read("format_version", version) && version.isInt(),
              "not a tlkit scheduler state (no format_version); write it with LRScheduler::save()");
  TLKIT_CHECK(version.toInt() == kScheduleFormatVersion, "scheduler state has format version ",
              version.toInt(), " but this tlkit reads version ", kScheduleFormatVersion,
              "; save it again with this version of tlkit");
  const auto type = detail::read_string(archive, "type", owner);
  TLKIT_CHECK(type == owner, "the archive holds a ", type, " state; it cannot be loaded into a ",
              owner, " (build the same schedule before loading)");
  auto base_lrs = detail::read_doubles(archive, "base_lrs", owner);
  auto last_lr = detail::read_doubles(archive, "last_lr", owner);
  TLKIT_CHECK(base_lrs.size() == num_groups() && last_lr.size() == num_groups(), owner,
              " state is for ", base_lrs.size(), " param groups but the optimizer has ",
              num_groups());
  const auto last_epoch = detail::read_int(archive, "last_epoch", owner);
  const auto step_count = detail::read_int(archive, "step_count", owner);
  load_state(archive);
  last_epoch_ = last_epoch;
  step_count_ = step_count;
  set_base_lrs(std::move(base_lrs));
  apply_lrs(last_lr);
  after_load();
}

void LRScheduler::save_state(torch::serialize::OutputArchive& /*archive*/) const {}

void LRScheduler::load_state(torch::serialize::InputArchive& /*archive*/) {}

}  // namespace tlkit::schedule
