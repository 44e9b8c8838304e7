#include <tlkit/core/strings.h>
#include <tlkit/schedule/spec.h>

#include <algorithm>

#include <cctype>
#include <cmath>
#include <functional>

#include <tlkit/core/error.h>
#include <tlkit/schedule/cosine.h>
#include <tlkit/schedule/decay.h>
#include <tlkit/schedule/momentum.h>
#include <tlkit/schedule/one_cycle.h>
#include <tlkit/schedule/plateau.h>
#include <tlkit/schedule/sequential.h>

#include "spec_args.h"

namespace tlkit::schedule {
namespace {

using detail::SpecArgs;
using detail::SpecPart;
using Optimizer = torch::optim::Optimizer;
// The context plus each group's lr before this spec built anything (a warm-up built first
// changes the lrs; onecycle's default max_lr must not see that).
struct BuildContext : ScheduleContext {
  std::vector<double> start_lrs;
};
using Builder =
    std::function<std::unique_ptr<LRScheduler>(const SpecPart&, Optimizer&, const BuildContext&)>;

struct Entry {
  const char* name;
  const char* help;
  Builder build;
};

std::unique_ptr<LRScheduler> build_step(const SpecPart& part, Optimizer& opt,
                                        const BuildContext& ctx) {
  SpecArgs a(part, {"step_size", "gamma"});
  const auto step_size =
      a.has("step_size")
          ? *a.integer("step_size")
          : std::max<std::int64_t>(1, a.need_total(ctx.total_steps, "step_size") / 3);
  return std::make_unique<StepLR>(opt, step_size, a.number("gamma", 0.1));
}

std::unique_ptr<LRScheduler> build_multistep(const SpecPart& part, Optimizer& opt,
                                             const BuildContext& ctx) {
  SpecArgs a(part, {"milestones", "gamma"});
  std::vector<std::int64_t> milestones;
  if (a.has("milestones")) {
    milestones = a.integers("milestones", {});
  } else {
    const auto total = a.need_total(ctx.total_steps, "milestones");
    milestones = {total / 2, total * 3 / 4};
  }
  return std::make_unique<MultiStepLR>(opt, milestones, a.number("gamma", 0.1));
}

std::unique_ptr<LRScheduler> build_exp(const SpecPart& part, Optimizer& opt,
                                       const BuildContext& ctx) {
  SpecArgs a(part, {"gamma"});
  // Without gamma: decay to 1% of the base lr over the run.
  const double gamma =
      a.has("gamma")
          ? *a.number("gamma")
          : std::pow(0.01, 1.0 / static_cast<double>(a.need_total(ctx.total_steps, "gamma")));
  return std::make_unique<ExponentialLR>(opt, gamma);
}

std::unique_ptr<LRScheduler> build_linear(const SpecPart& part, Optimizer& opt,
                                          const BuildContext&) {
  SpecArgs a(part, {"start_factor", "end_factor", "total_iters"});
  return std::make_unique<LinearLR>(opt, a.number("start_factor", 1.0 / 3),
                                    a.number("end_factor", 1.0), a.integer("total_iters", 5));
}

std::unique_ptr<LRScheduler> build_constantlr(const SpecPart& part, Optimizer& opt,
                                              const BuildContext&) {
  SpecArgs a(part, {"factor", "total_iters"});
  return std::make_unique<ConstantLR>(opt, a.number("factor", 1.0 / 3),
                                      a.integer("total_iters", 5));
}

std::unique_ptr<LRScheduler> build_poly(const SpecPart& part, Optimizer& opt,
                                        const BuildContext& ctx) {
  SpecArgs a(part, {"total_iters", "power"});
  const auto total_iters = a.has("total_iters") ? *a.integer("total_iters")
                                                : a.need_total(ctx.total_steps, "total_iters");
  return std::make_unique<PolynomialLR>(opt, total_iters, a.number("power", 1.0));
}

std::unique_ptr<LRScheduler> build_cosine(const SpecPart& part, Optimizer& opt,
                                          const BuildContext& ctx) {
  SpecArgs a(part, {"T_max", "eta_min"});
  const auto t_max = a.has("T_max") ? *a.integer("T_max") : a.need_total(ctx.total_steps, "T_max");
  return std::make_unique<CosineAnnealingLR>(opt, t_max, a.number("eta_min", 0.0));
}

std::unique_ptr<LRScheduler> build_restarts(const SpecPart& part, Optimizer& opt,
                                            const BuildContext& ctx) {
  SpecArgs a(part, {"T_0", "T_mult", "eta_min"});
  const auto t_mult = a.integer("T_mult", 1);
  std::int64_t t_0 = 0;
  if (a.has("T_0")) {
    t_0 = *a.integer("T_0");
  } else {
    // Three cycles fill the run: T_0 + T_0 T_mult + T_0 T_mult^2 = total.
    const auto total = a.need_total(ctx.total_steps, "T_0");
    t_0 = std::max<std::int64_t>(1, total / (1 + t_mult + t_mult * t_mult));
  }
  return std::make_unique<CosineAnnealingWarmRestarts>(opt, t_0, t_mult, a.number("eta_min", 0.0));
}

bool all_groups_have_momentum(const Optimizer& opt) {
  for (const auto& group : opt.param_groups()) {
    if (!get_momentum(group.options())) return false;
  }
  return true;
}

std::unique_ptr<LRScheduler> build_onecycle(const SpecPart& part, Optimizer& opt,
                                            const BuildContext& ctx) {
  SpecArgs a(part, {"max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start",
                    "anneal_strategy", "cycle_momentum", "base_momentum", "max_momentum",
                    "div_factor", "final_div_factor", "three_phase"});
  // Without max_lr every group peaks at its own lr, so per-layer ratios are kept.
  OneCycleLROptions o(a.numbers("max_lr", ctx.start_lrs));
  if (a.has("total_steps")) {
    o.total_steps(*a.integer("total_steps"));
  } else if (a.has("epochs")) {
    o.epochs(*a.integer("epochs"))
        .steps_per_epoch(a.integer("steps_per_epoch", ctx.steps_per_epoch));
  } else {
    o.total_steps(a.need_total(ctx.total_steps, "total_steps"));
  }
  const auto strategy = a.choice("anneal_strategy", {"cos", "linear"}, "cos");
  o.pct_start(a.number("pct_start", 0.3))
      .anneal_strategy(strategy == "cos" ? AnnealStrategy::kCos : AnnealStrategy::kLinear)
      .cycle_momentum(a.boolean("cycle_momentum", all_groups_have_momentum(opt)))
      .base_momentum(a.numbers("base_momentum", {0.85}))
      .max_momentum(a.numbers("max_momentum", {0.95}))
      .div_factor(a.number("div_factor", 25.))
      .final_div_factor(a.number("final_div_factor", 1e4))
      .three_phase(a.boolean("three_phase", false));
  return std::make_unique<OneCycleLR>(opt, o);
}

std::unique_ptr<LRScheduler> build_plateau(const SpecPart& part, Optimizer& opt,
                                           const BuildContext&) {
  SpecArgs a(part, {"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                    "min_lr", "eps"});
  ReduceLROnPlateauOptions o;
  o.mode(a.choice("mode", {"min", "max"}, "min") == "min" ? PlateauMode::kMin : PlateauMode::kMax)
      .factor(a.number("factor", 0.1))
      .patience(a.integer("patience", 10))
      .threshold(a.number("threshold", 1e-4))
      .threshold_mode(a.choice("threshold_mode", {"rel", "abs"}, "rel") == "rel"
                          ? ThresholdMode::kRel
                          : ThresholdMode::kAbs)
      .cooldown(a.integer("cooldown", 0))
      .min_lr(a.numbers("min_lr", {0.0}))
      .eps(a.number("eps", 1e-8));
  return std::make_unique<ReduceLROnPlateau>(opt, o);
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {"constant", "the lr never changes",
       [](const SpecPart& p, Optimizer& o, const BuildContext&) {
         SpecArgs a(p, {});
         return std::unique_ptr<LRScheduler>(std::make_unique<FixedLR>(o));
       }},
      {"constantlr", "ConstantLR: factor=1/3, total_iters=5", build_constantlr},
      {"step", "StepLR: step_size=total/3, gamma=0.1", build_step},
      {"multistep", "MultiStepLR: milestones=total/2/(3 total/4) ('/'-separated), gamma=0.1",
       build_multistep},
      {"exp", "ExponentialLR: gamma=0.01^(1/total)", build_exp},
      {"exponential", "the same as exp", build_exp},
      {"linear", "LinearLR: start_factor=1/3, end_factor=1, total_iters=5", build_linear},
      {"poly", "PolynomialLR: total_iters=total, power=1", build_poly},
      {"cosine", "CosineAnnealingLR: T_max=total, eta_min=0", build_cosine},
      {"restarts",
       "CosineAnnealingWarmRestarts: T_0=total/(1+T_mult+T_mult^2), T_mult=1, eta_min=0",
       build_restarts},
      {"onecycle",
       "OneCycleLR: max_lr=each group's lr, total_steps=total (or epochs, steps_per_epoch), "
       "pct_start=0.3, "
       "anneal_strategy=cos|linear, cycle_momentum=true if the optimizer has momentum, "
       "base_momentum=0.85, "
       "max_momentum=0.95, div_factor=25, final_div_factor=1e4, three_phase=false",
       build_onecycle},
      {"plateau",
       "ReduceLROnPlateau: mode=min|max, factor=0.1, patience=10, threshold=1e-4, "
       "threshold_mode=rel|abs, "
       "cooldown=0, min_lr=0, eps=1e-8 (needs a metric each step)",
       build_plateau},
  };
  return table;
}

std::vector<std::string> base_names() {
  std::vector<std::string> names;
  for (const auto& entry : entries()) names.emplace_back(entry.name);
  return names;
}

std::unique_ptr<LRScheduler> build_single(const std::string& text, Optimizer& opt,
                                          const BuildContext& ctx) {
  const auto part = detail::parse_spec_part(text);
  for (const auto& entry : entries()) {
    if (part.name == entry.name) return entry.build(part, opt, ctx);
  }
  if (part.name == "warmup") fail("'warmup' must come first: warmup:N+", text);
  fail("unknown schedule '", part.name, "'; valid names: ", join(schedule_names()));
}

// "warmup:N[,start_factor=F]" followed by '+' and the schedule that runs after the warm-up.
std::unique_ptr<LRScheduler> build_warmup(const std::string& warmup_text, const std::string& rest,
                                          Optimizer& opt, const BuildContext& ctx) {
  SpecArgs a(detail::parse_spec_part(warmup_text), {"total_iters", "start_factor"}, 1);
  std::optional<std::int64_t> iters = a.integer("total_iters");
  if (!a.positional().empty()) {
    TLKIT_CHECK(!iters, "warmup: give the number of steps once (warmup:5 or warmup:total_iters=5)");
    SpecPart count{"warmup", {}, {{"total_iters", a.positional().front()}}};
    iters = SpecArgs(count, {"total_iters"}).integer("total_iters");
  }
  TLKIT_CHECK(iters && *iters >= 1, "warmup needs its number of steps >= 1, e.g. warmup:5+cosine");
  const double start_factor = a.number("start_factor", 0.1);
  if (rest.empty()) return std::make_unique<LinearLR>(opt, start_factor, 1.0, *iters);
  // Built in torch's order: the warm-up first, then the schedule that follows it.
  auto warmup = std::make_shared<LinearLR>(opt, start_factor, 1.0, *iters);
  BuildContext after = ctx;
  if (ctx.total_steps > 0) {
    TLKIT_CHECK(ctx.total_steps > *iters, "warmup of ", *iters, " steps leaves no steps of the ",
                ctx.total_steps, " in the run for '", rest, "'");
    after.total_steps = ctx.total_steps - *iters;
  }
  std::shared_ptr<LRScheduler> main = build_single(rest, opt, after);
  return std::make_unique<SequentialLR>(opt,
                                        std::vector<std::shared_ptr<LRScheduler>>{warmup, main},
                                        std::vector<std::int64_t>{*iters});
}

// The '+' joining warm-up and schedule: one followed by a name (not the sign of an exponent).
std::string::size_type find_join(const std::string& spec) {
  for (std::string::size_type i = 0; i < spec.size(); ++i) {
    if (spec[i] != '+') continue;
    const auto next = spec.find_first_not_of(' ', i + 1);
    if (next == std::string::npos || std::isalpha(static_cast<unsigned char>(spec[next]))) return i;
  }
  return std::string::npos;
}

}  // namespace

std::unique_ptr<LRScheduler> make_scheduler(const std::string& spec, Optimizer& optimizer,
                                            const ScheduleContext& context) {
  TLKIT_CHECK(context.total_steps >= 0 && context.steps_per_epoch >= 1,
              "schedule context: total_steps must be >= 0 and steps_per_epoch >= 1");
  BuildContext ctx;
  static_cast<ScheduleContext&>(ctx) = context;
  for (const auto& group : optimizer.param_groups())
    ctx.start_lrs.push_back(group.options().get_lr());
  const auto join = find_join(spec);
  TLKIT_CHECK(
      join == std::string::npos || spec.find_first_not_of(' ', join + 1) != std::string::npos,
      "schedule spec '", spec,
      "' ends with '+'; name the schedule that follows, e.g. warmup:5+cosine");
  const auto head = spec.substr(0, join);
  if (trim(spec) == "auto") return build_single(auto_spec(context), optimizer, ctx);
  if (detail::parse_spec_part(head).name == "warmup") {
    return build_warmup(head, join == std::string::npos ? "" : spec.substr(join + 1), optimizer,
                        ctx);
  }
  TLKIT_CHECK(join == std::string::npos, "schedule spec '", spec,
              "': only a warm-up can come before '+', e.g. warmup:5+cosine");
  return build_single(spec, optimizer, ctx);
}

std::string auto_spec(const ScheduleContext& context) {
  TLKIT_CHECK(context.total_steps > 0,
              "schedule 'auto' is laid out over the run: it needs the run's length");
  // Three cycles of whole epochs (at least one): T_0 in scheduler steps, per epoch or per batch.
  const auto epochs = std::max<std::int64_t>(1, context.total_steps / context.steps_per_epoch);
  return "restarts:T_0=" +
         std::to_string(std::max<std::int64_t>(1, epochs / 3) * context.steps_per_epoch);
}

std::vector<std::string> schedule_names() {
  auto names = base_names();
  names.emplace_back("auto");
  names.emplace_back("warmup");
  return names;
}

std::string schedule_spec_help() {
  std::string help;
  for (const auto& entry : entries()) {
    std::string name = entry.name;
    name.resize(12, ' ');
    help += "  " + name + entry.help + "\n";
  }
  help += "  auto        three warm-restart cycles of whole epochs over the run: "
          "restarts:T_0=(epochs/3 epochs)\n";
  help += "  warmup:N    N steps of linear warm-up (start_factor=0.1), then '+' and another spec\n";
  return help;
}

}  // namespace tlkit::schedule
