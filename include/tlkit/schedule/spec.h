#pragma once
// Textual schedule specs, shared by the CLI, the trainer and the benchmark:
//   NAME[:KEY=VALUE,KEY=VALUE...]            lists inside a value are separated by '/'
//   warmup:N[,start_factor=F]+SPEC           N steps of linear warm-up, then SPEC (SequentialLR)
// Examples: constant · step:step_size=10,gamma=0.1 · multistep:milestones=30/80,gamma=0.1 ·
// exp:gamma=0.95 · linear:start_factor=0.1,total_iters=5 · poly:total_iters=30,power=1 ·
// cosine:T_max=30,eta_min=0 · restarts:T_0=10,T_mult=2 · onecycle:max_lr=0.1 · auto ·
// plateau:patience=5,factor=0.5 · constantlr:factor=0.5,total_iters=4 · warmup:5+cosine.
// Keys are the torch argument names; missing ones take torch's defaults, or, where torch has
// none, a default from the context (e.g. cosine's T_max = total steps). A step is one call of
// step(), per epoch or per iteration as the caller decides.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tlkit/schedule/lr_scheduler.h>

namespace tlkit::schedule {

struct ScheduleContext {
  // Scheduler steps in the whole run (epochs when stepping per epoch); 0 = unknown.
  std::int64_t total_steps = 0;
  // Scheduler steps per epoch (1 when stepping per epoch); onecycle's `epochs` key uses it.
  std::int64_t steps_per_epoch = 1;
};

// Builds the schedule described by `spec` on `optimizer`. Throws tlkit::Error for an unknown
// name or key (listing the valid ones), a malformed value, or a default that needs a total step
// count the context does not have.
std::unique_ptr<LRScheduler> make_scheduler(const std::string& spec,
                                            torch::optim::Optimizer& optimizer,
                                            const ScheduleContext& context = {});

// What "auto" means for a run of `context`: three warm-restart cosine cycles (three snapshots for
// an ensemble), each a whole number of epochs, T_0 counted in scheduler steps (so the same with
// per-batch stepping), e.g. "restarts:T_0=2" over 6 epochs stepped per epoch.
std::string auto_spec(const ScheduleContext& context);

// The schedule names make_scheduler accepts.
std::vector<std::string> schedule_names();

// One line per schedule name: its keys and their defaults (for --help texts).
std::string schedule_spec_help();

}  // namespace tlkit::schedule
