#pragma once
// SequentialLR: runs schedules one after the other, switching at the milestones (torch 1.13's
// SequentialLR). The usual use is a warm-up (Goyal et al. 2017, "Accurate, Large Minibatch SGD"):
//   auto warmup = std::make_shared<LinearLR>(optimizer, 0.1, 1.0, 5);
//   auto cosine = std::make_shared<CosineAnnealingLR>(optimizer, 95);
//   SequentialLR schedule(optimizer, {warmup, cosine}, {5});
// Build the wrapped schedules first, in order, on the same optimizer. As in torch, construction
// resets every lr to its base lr and restarts the first schedule; at milestone m_k the next
// schedule jumps to its epoch 0 (its closed form), then steps on from there.

#include <cstdint>
#include <memory>
#include <vector>

#include <tlkit/schedule/lr_scheduler.h>

namespace tlkit::schedule {

class SequentialLR : public LRScheduler {
 public:
  // The cycle of the schedule now in charge (nullopt when it has none).
  std::optional<std::int64_t> cycle() const override;
  SequentialLR(torch::optim::Optimizer& optimizer,
               std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<std::int64_t> milestones);
  std::string name() const override { return "SequentialLR"; }

  void step() override;
  void step_to(double epoch) override;

  const std::vector<std::shared_ptr<LRScheduler>>& schedulers() const { return schedulers_; }
  // Every wrapped schedule's lrs too (each keeps its own base lrs).
  void scale_lrs(double factor) override;
  const std::vector<std::int64_t>& milestones() const { return milestones_; }

 protected:
  std::vector<double> compute_lr() override { return group_lrs(); }
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<std::int64_t> milestones_;
};

}  // namespace tlkit::schedule
