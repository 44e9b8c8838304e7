#pragma once
// Shared by the schedule tests: the Python torch reference sequences written by
// scripts/gen_schedule_reference.py, the optimizers they were made with, and a C++ builder for
// every reference case (same arguments as the script).

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/optim/adam.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include <tlkit/schedule.h>

#include "support/test_support.h"

namespace tlkit::test {

struct ScheduleCase {
  std::string name;
  std::string spec;                           // the equivalent make_scheduler spec, or "-"
  std::string optimizer;                      // "sgd" or "adam"
  std::vector<std::vector<double>> lr;        // [step][group]; step 0 = after construction
  std::vector<std::vector<double>> momentum;  // [step][group]; empty unless OneCycleLR cycles it
  std::vector<double> inputs;                 // inputs[i-1] drives step i (metric or epoch)
};

namespace schedule_reference_detail {

using namespace ::tlkit::schedule;  // NOLINT: test helper
using Optimizer = torch::optim::Optimizer;
using Factory = std::function<std::unique_ptr<LRScheduler>(Optimizer&)>;

inline std::vector<double> read_values(std::istringstream& in) {
  std::vector<double> values;
  std::string token;
  while (in >> token) values.push_back(std::stod(token));
  return values;
}

inline std::vector<ScheduleCase> parse(const std::string& path) {
  std::ifstream file(path);
  if (!file)
    throw std::runtime_error("missing " + path + "; build the target tlkit_reference_data");
  std::vector<ScheduleCase> cases;
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    if (kind.empty() || kind[0] == '#' || kind == "end") continue;
    if (kind == "case") {
      cases.emplace_back();
      in >> cases.back().name;
      continue;
    }
    auto& c = cases.back();
    if (kind == "spec") {
      in >> c.spec;
    } else if (kind == "optimizer") {
      in >> c.optimizer;
    } else {
      std::size_t step = 0;
      in >> step;
      auto values = read_values(in);
      if (kind == "lr") c.lr.push_back(values);
      if (kind == "momentum") c.momentum.push_back(values);
      if (kind == "input") c.inputs.push_back(values.at(0));
    }
  }
  return cases;
}

inline std::unique_ptr<LRScheduler> sequential(Optimizer& o,
                                               std::vector<std::shared_ptr<LRScheduler>> parts,
                                               std::vector<std::int64_t> milestones) {
  return std::make_unique<SequentialLR>(o, std::move(parts), std::move(milestones));
}

template <typename T, typename... Args>
std::shared_ptr<LRScheduler> part(Args&&... args) {
  return std::make_shared<T>(std::forward<Args>(args)...);
}

inline const std::map<std::string, Factory>& factories() {
  using O = OneCycleLROptions;
  using P = ReduceLROnPlateauOptions;
  static const std::map<std::string, Factory> table = {
      {"constant", [](Optimizer& o) { return std::make_unique<FixedLR>(o); }},
      {"step", [](Optimizer& o) { return std::make_unique<StepLR>(o, 7, 0.5); }},
      {"step_default_gamma", [](Optimizer& o) { return std::make_unique<StepLR>(o, 3); }},
      {"multistep",
       [](Optimizer& o) {
         return std::make_unique<MultiStepLR>(o, std::vector<std::int64_t>{5, 12, 12, 25}, 0.3);
       }},
      {"constantlr", [](Optimizer& o) { return std::make_unique<ConstantLR>(o, 0.25, 6); }},
      {"constantlr_default", [](Optimizer& o) { return std::make_unique<ConstantLR>(o); }},
      {"linear", [](Optimizer& o) { return std::make_unique<LinearLR>(o, 0.2, 0.9, 10); }},
      {"linear_default", [](Optimizer& o) { return std::make_unique<LinearLR>(o); }},
      {"exp", [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.9); }},
      {"poly", [](Optimizer& o) { return std::make_unique<PolynomialLR>(o, 20, 2.0); }},
      {"poly_sqrt", [](Optimizer& o) { return std::make_unique<PolynomialLR>(o, 30, 0.5); }},
      {"cosine", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 30); }},
      {"cosine_past_tmax",
       [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 10, 0.001); }},
      {"restarts",
       [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 5, 2, 1e-4); }},
      {"restarts_tmult1",
       [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 7); }},
      {"restarts_fractional",
       [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 3, 2, 0.001); }},
      {"restarts_fractional_tmult1",
       [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 4, 1); }},
      {"onecycle",
       [](Optimizer& o) {
         return std::make_unique<OneCycleLR>(o, O({1.0, 0.1}).total_steps(40));
       }},
      {"onecycle_adam_linear_3phase",
       [](Optimizer& o) {
         return std::make_unique<OneCycleLR>(o, O({0.5, 0.05})
                                                    .epochs(5)
                                                    .steps_per_epoch(8)
                                                    .anneal_strategy(AnnealStrategy::kLinear)
                                                    .three_phase(true));
       }},
      {"onecycle_no_momentum",
       [](Optimizer& o) {
         return std::make_unique<OneCycleLR>(o, O({0.3, 0.03})
                                                    .total_steps(36)
                                                    .pct_start(0.25)
                                                    .div_factor(10)
                                                    .final_div_factor(100)
                                                    .cycle_momentum(false));
       }},
      {"onecycle_momentum_range",
       [](Optimizer& o) {
         return std::make_unique<OneCycleLR>(o, O({0.2, 0.02})
                                                    .total_steps(33)
                                                    .base_momentum({0.8})
                                                    .max_momentum({0.99})
                                                    .pct_start(0.4));
       }},
      {"plateau_min_rel",
       [](Optimizer& o) {
         return std::make_unique<ReduceLROnPlateau>(
             o, P().patience(2).factor(0.5).cooldown(1).min_lr({0.02, 0.001}));
       }},
      {"plateau_max_abs",
       [](Optimizer& o) {
         return std::make_unique<ReduceLROnPlateau>(o, P().mode(PlateauMode::kMax)
                                                           .threshold_mode(ThresholdMode::kAbs)
                                                           .threshold(0.05)
                                                           .patience(1)
                                                           .factor(0.3));
       }},
      {"plateau_eps",
       [](Optimizer& o) {
         return std::make_unique<ReduceLROnPlateau>(o, P().patience(0).factor(0.5).eps(0.004));
       }},
      {"warmup_cosine",
       [](Optimizer& o) {
         auto warm = part<LinearLR>(o, 0.1, 1.0, 5);
         return sequential(o, {warm, part<CosineAnnealingLR>(o, 35)}, {5});
       }},
      {"warmup_cosine_custom",
       [](Optimizer& o) {
         auto warm = part<LinearLR>(o, 0.01, 1.0, 8);
         return sequential(o, {warm, part<CosineAnnealingLR>(o, 32, 0.001)}, {8});
       }},
      {"warmup_restarts",
       [](Optimizer& o) {
         auto warm = part<LinearLR>(o, 0.1, 1.0, 4);
         return sequential(o, {warm, part<CosineAnnealingWarmRestarts>(o, 6, 2)}, {4});
       }},
      {"warmup_step",
       [](Optimizer& o) {
         auto warm = part<LinearLR>(o, 0.1, 1.0, 3);
         return sequential(o, {warm, part<StepLR>(o, 4, 0.5)}, {3});
       }},
      {"sequential_three",
       [](Optimizer& o) {
         auto first = part<ConstantLR>(o, 0.1, 2);
         auto second = part<ExponentialLR>(o, 0.9);
         return sequential(o, {first, second, part<StepLR>(o, 4, 0.5)}, {3, 10});
       }},
  };
  return table;
}

}  // namespace schedule_reference_detail

using schedule::LRScheduler;
using schedule_reference_detail::Optimizer;

inline const std::vector<ScheduleCase>& schedule_reference_cases() {
  static const std::vector<ScheduleCase> cases =
      schedule_reference_detail::parse((test_data_dir() / "schedule_reference.txt").string());
  return cases;
}

inline std::unique_ptr<Optimizer> make_reference_optimizer(const std::string& kind) {
  const std::vector<double> lrs = {0.1, 0.01};
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (std::size_t i = 0; i < lrs.size(); ++i) {
    std::vector<at::Tensor> params = {
        torch::zeros({static_cast<std::int64_t>(i) + 2}, torch::requires_grad())};
    if (kind == "adam") {
      groups.emplace_back(params, std::make_unique<torch::optim::AdamOptions>(lrs[i]));
    } else {
      auto options = std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(lrs[i]).momentum(0.9));
      groups.emplace_back(params, std::move(options));
    }
  }
  if (kind == "adam")
    return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(lrs[0]));
  return std::make_unique<torch::optim::SGD>(groups,
                                             torch::optim::SGDOptions(lrs[0]).momentum(0.9));
}

inline std::unique_ptr<LRScheduler> build_reference_schedule(const std::string& name,
                                                             Optimizer& optimizer) {
  const auto& table = schedule_reference_detail::factories();
  const auto it = table.find(name);
  if (it == table.end()) throw std::runtime_error("no C++ builder for reference case " + name);
  return it->second(optimizer);
}

inline void step_reference_case(const ScheduleCase& c, LRScheduler& scheduler, std::size_t index) {
  if (c.inputs.empty()) {
    scheduler.step();
  } else if (scheduler.uses_metric()) {
    scheduler.step_with_metric(c.inputs.at(index - 1));
  } else {
    scheduler.step_to(c.inputs.at(index - 1));
  }
}

inline std::vector<double> group_momenta(const Optimizer& optimizer) {
  std::vector<double> momenta;
  for (const auto& group : optimizer.param_groups()) {
    momenta.push_back(schedule::get_momentum(group.options()).value_or(-1));
  }
  return momenta;
}

}  // namespace tlkit::test
