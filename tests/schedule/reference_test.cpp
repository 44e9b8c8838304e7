// Every schedule against Python torch.optim.lr_scheduler (torch 1.13), two param groups with
// different base lrs, to 1e-12 absolute; built directly and through its make_scheduler spec.

#include <cmath>
#include <iostream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "schedule/schedule_reference.h"

namespace {

using namespace tlkit::schedule;
using tlkit::test::ScheduleCase;

constexpr double kTolerance = 1e-12;

struct Deviation {
  double max_abs = 0;
  std::size_t inexact = 0;  // values not bit-identical to torch's
};

// Compares the optimizer's lrs (and momenta) with reference step `step`; returns the worst
// deviation.
void expect_step(const ScheduleCase& c, const torch::optim::Optimizer& optimizer,
                 const LRScheduler& scheduler, std::size_t step, Deviation& deviation,
                 const std::string& how) {
  const auto& want = c.lr.at(step);
  const auto got = scheduler.get_last_lr();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t g = 0; g < want.size(); ++g) {
    const double actual = optimizer.param_groups()[g].options().get_lr();
    EXPECT_EQ(actual, got[g]) << "get_last_lr() differs from the optimizer's lr";
    EXPECT_NEAR(actual, want[g], kTolerance)
        << c.name << " (" << how << ") step " << step << " group " << g;
    deviation.max_abs = std::max(deviation.max_abs, std::abs(actual - want[g]));
    deviation.inexact += actual != want[g];
  }
  if (c.momentum.empty()) return;
  const auto momenta = tlkit::test::group_momenta(optimizer);
  for (std::size_t g = 0; g < momenta.size(); ++g) {
    EXPECT_NEAR(momenta[g], c.momentum.at(step)[g], kTolerance)
        << c.name << " momentum step " << step;
    deviation.inexact += momenta[g] != c.momentum.at(step)[g];
  }
}

Deviation run_case(const ScheduleCase& c, bool from_spec) {
  auto optimizer = tlkit::test::make_reference_optimizer(c.optimizer);
  std::unique_ptr<LRScheduler> scheduler;
  if (from_spec) {
    ScheduleContext context;
    context.total_steps = static_cast<std::int64_t>(c.lr.size());
    scheduler = make_scheduler(c.spec, *optimizer, context);
  } else {
    scheduler = tlkit::test::build_reference_schedule(c.name, *optimizer);
  }
  Deviation deviation;
  const std::string how = from_spec ? "spec '" + c.spec + "'" : "class";
  expect_step(c, *optimizer, *scheduler, 0, deviation, how);
  for (std::size_t step = 1; step < c.lr.size(); ++step) {
    tlkit::test::step_reference_case(c, *scheduler, step);
    expect_step(c, *optimizer, *scheduler, step, deviation, how);
  }
  return deviation;
}

TEST(ScheduleReference, CoversEverySchedule) {
  const auto& cases = tlkit::test::schedule_reference_cases();
  ASSERT_GE(cases.size(), 25u);
  std::set<std::string> names;
  for (const auto& c : cases) {
    EXPECT_GE(c.lr.size(), 30u) << c.name;
    EXPECT_EQ(c.lr.front().size(), 2u) << c.name;
    EXPECT_NE(c.lr.front()[0], c.lr.front()[1])
        << c.name << ": the two groups need different base lrs";
    auto optimizer = tlkit::test::make_reference_optimizer(c.optimizer);
    names.insert(tlkit::test::build_reference_schedule(c.name, *optimizer)->name());
  }
  for (const char* name :
       {"FixedLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
        "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR",
        "ReduceLROnPlateau", "SequentialLR"}) {
    EXPECT_EQ(names.count(name), 1u) << name << " has no reference case";
  }
}

TEST(ScheduleReference, ClassesMatchTorch) {
  Deviation total;
  for (const auto& c : tlkit::test::schedule_reference_cases()) {
    const auto deviation = run_case(c, /*from_spec=*/false);
    total.max_abs = std::max(total.max_abs, deviation.max_abs);
    total.inexact += deviation.inexact;
  }
  std::cout << "[ schedule ] max |lr - torch| = " << total.max_abs
            << ", values not bit-identical: " << total.inexact << "\n";
}

TEST(ScheduleReference, SpecsMatchTorch) {
  std::size_t checked = 0;
  for (const auto& c : tlkit::test::schedule_reference_cases()) {
    if (c.spec == "-") continue;
    SCOPED_TRACE(c.spec);
    run_case(c, /*from_spec=*/true);
    ++checked;
  }
  EXPECT_GE(checked, 25u);
}

// Save mid-way, load into a fresh optimizer + schedule, continue both: identical to each other and
// to torch.
TEST(ScheduleReference, SaveLoadMidwayContinuesExactly) {
  for (const auto& c : tlkit::test::schedule_reference_cases()) {
    SCOPED_TRACE(c.name);
    auto optimizer = tlkit::test::make_reference_optimizer(c.optimizer);
    auto scheduler = tlkit::test::build_reference_schedule(c.name, *optimizer);
    const std::size_t half = c.lr.size() / 2;
    for (std::size_t step = 1; step <= half; ++step)
      tlkit::test::step_reference_case(c, *scheduler, step);

    torch::serialize::OutputArchive out;
    scheduler->save(out);
    std::ostringstream bytes;
    out.save_to(bytes);
    std::istringstream in_bytes(bytes.str());
    torch::serialize::InputArchive in;
    in.load_from(in_bytes);

    auto restored_optimizer = tlkit::test::make_reference_optimizer(c.optimizer);
    auto restored = tlkit::test::build_reference_schedule(c.name, *restored_optimizer);
    restored->load(in);
    EXPECT_EQ(restored->last_epoch(), scheduler->last_epoch());
    EXPECT_EQ(restored->get_last_lr(), scheduler->get_last_lr());
    EXPECT_EQ(tlkit::test::group_momenta(*restored_optimizer),
              tlkit::test::group_momenta(*optimizer));
    for (std::size_t step = half + 1; step < c.lr.size(); ++step) {
      tlkit::test::step_reference_case(c, *scheduler, step);
      tlkit::test::step_reference_case(c, *restored, step);
      ASSERT_EQ(restored->get_last_lr(), scheduler->get_last_lr()) << "step " << step;
      ASSERT_EQ(tlkit::test::group_momenta(*restored_optimizer),
                tlkit::test::group_momenta(*optimizer));
      Deviation ignored;
      expect_step(c, *restored_optimizer, *restored, step, ignored, "restored");
    }
  }
}

}  // namespace
