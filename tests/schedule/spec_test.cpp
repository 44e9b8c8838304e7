// make_scheduler: every name builds, defaults come from the context, bad names / keys / values
// are clear errors listing what is valid. (Specs against torch's numbers: reference_test.cpp.)

#include <gtest/gtest.h>

#include <tlkit/core/error.h>

#include "schedule/schedule_reference.h"

namespace {

using namespace tlkit::schedule;

std::string error_of(const std::string& spec, ScheduleContext context = {}) {
  auto optimizer = tlkit::test::make_reference_optimizer("sgd");
  try {
    make_scheduler(spec, *optimizer, context);
  } catch (const tlkit::Error& e) {
    return e.what();
  }
  return "";
}

ScheduleContext steps(std::int64_t total) {
  ScheduleContext context;
  context.total_steps = total;
  return context;
}

TEST(ScheduleSpec, EveryNameBuildsWithDefaultsFromTheContext) {
  const std::map<std::string, std::string> expected = {
      {"constant", "FixedLR"},
      {"constantlr", "ConstantLR"},
      {"step", "StepLR"},
      {"multistep", "MultiStepLR"},
      {"exp", "ExponentialLR"},
      {"exponential", "ExponentialLR"},
      {"linear", "LinearLR"},
      {"poly", "PolynomialLR"},
      {"cosine", "CosineAnnealingLR"},
      {"restarts", "CosineAnnealingWarmRestarts"},
      {"onecycle", "OneCycleLR"},
      {"plateau", "ReduceLROnPlateau"},
      {"auto", "CosineAnnealingWarmRestarts"},
      {"warmup", "LinearLR"},
  };
  const auto names = schedule_names();
  EXPECT_EQ(names.size(), expected.size());
  for (const auto& name : names) {
    ASSERT_EQ(expected.count(name), 1u) << name;
    auto optimizer = tlkit::test::make_reference_optimizer("sgd");
    const auto spec = name == "warmup" ? "warmup:5" : name;
    auto scheduler = make_scheduler(spec, *optimizer, steps(60));
    EXPECT_EQ(scheduler->name(), expected.at(name)) << spec;
    for (int i = 0; i < 59; ++i) scheduler->step_with_metric(1.0);
    for (double lr : scheduler->get_last_lr()) EXPECT_TRUE(std::isfinite(lr) && lr >= 0) << spec;
  }
  EXPECT_NE(schedule_spec_help().find("restarts"), std::string::npos);
}

TEST(ScheduleSpec, ContextDefaultsFollowTheRunLength) {
  auto optimizer = tlkit::test::make_reference_optimizer("sgd");
  // cosine: T_max = total steps, so the lr reaches eta_min (0) at the last step.
  auto cosine = make_scheduler("cosine", *optimizer, steps(20));
  for (int i = 0; i < 20; ++i) cosine->step();
  EXPECT_NEAR(cosine->get_last_lr()[0], 0.0, 1e-15);

  auto o2 = tlkit::test::make_reference_optimizer("sgd");
  auto one_cycle = make_scheduler("onecycle", *o2, steps(30));
  EXPECT_EQ(dynamic_cast<OneCycleLR&>(*one_cycle).total_steps(), 30);
  // max_lr defaults to each group's lr, so groups keep their ratio.
  EXPECT_NEAR(one_cycle->get_last_lr()[0] / one_cycle->get_last_lr()[1], 10.0, 1e-12);

  auto o3 = tlkit::test::make_reference_optimizer("sgd");
  ScheduleContext per_batch;
  per_batch.steps_per_epoch = 7;
  auto by_epochs = make_scheduler("onecycle:epochs=3", *o3, per_batch);
  EXPECT_EQ(dynamic_cast<OneCycleLR&>(*by_epochs).total_steps(), 21);

  auto o4 = tlkit::test::make_reference_optimizer("sgd");
  auto restarts = make_scheduler("restarts:T_mult=2", *o4, steps(70));
  EXPECT_EQ(dynamic_cast<CosineAnnealingWarmRestarts&>(*restarts).T_i(), 10);  // 10 + 20 + 40 = 70

  auto o5 = tlkit::test::make_reference_optimizer("sgd");
  auto exp = make_scheduler("exp", *o5, steps(50));
  for (int i = 0; i < 50; ++i) exp->step();
  EXPECT_NEAR(exp->get_last_lr()[0], 0.1 * 0.01, 1e-12);
}

TEST(ScheduleSpec, WarmupForms) {
  for (const std::string spec : {"warmup:5+cosine", "warmup:total_iters=5+cosine",
                                 " warmup : 5 , start_factor=0.1 + cosine "}) {
    auto optimizer = tlkit::test::make_reference_optimizer("sgd");
    auto scheduler = make_scheduler(spec, *optimizer, steps(40));
    EXPECT_EQ(scheduler->name(), "SequentialLR") << spec;
    EXPECT_NEAR(scheduler->get_last_lr()[0], 0.01, 1e-17) << spec;
  }
  // A '+' inside a number is not a join.
  auto optimizer = tlkit::test::make_reference_optimizer("sgd");
  EXPECT_EQ(make_scheduler("exp:gamma=9.5e+0", *optimizer)->name(), "ExponentialLR");
}

TEST(ScheduleSpec, UnknownNamesAndKeysListTheValidOnes) {
  const auto bad_name = error_of("cosinus");
  EXPECT_NE(bad_name.find("unknown schedule 'cosinus'"), std::string::npos) << bad_name;
  for (const auto& name : schedule_names())
    EXPECT_NE(bad_name.find(name), std::string::npos) << name;

  const auto bad_key = error_of("step:step_size=3,gama=0.5");
  EXPECT_NE(bad_key.find("unknown key 'gama'"), std::string::npos) << bad_key;
  EXPECT_NE(bad_key.find("step_size, gamma"), std::string::npos) << bad_key;
  EXPECT_NE(error_of("constant:factor=2").find("valid keys: none"), std::string::npos);
  EXPECT_NE(error_of("restarts:T_0=5,t_mult=2").find("T_mult"), std::string::npos);
}

TEST(ScheduleSpec, MalformedValuesAndMissingTotalsAreClearErrors) {
  EXPECT_NE(error_of("step:step_size=abc").find("step_size='abc' is not an integer"),
            std::string::npos);
  EXPECT_NE(error_of("step:step_size=2.5").find("not an integer"), std::string::npos);
  EXPECT_NE(error_of("exp:gamma=").find("not a number"), std::string::npos);
  EXPECT_NE(error_of("multistep:milestones=3/x").find("list of integers"), std::string::npos);
  EXPECT_NE(error_of("onecycle:total_steps=10,three_phase=maybe").find("true or false"),
            std::string::npos);
  EXPECT_NE(error_of("onecycle:total_steps=10,anneal_strategy=cosine").find("cos, linear"),
            std::string::npos);
  EXPECT_NE(error_of("plateau:mode=lowest").find("min, max"), std::string::npos);
  EXPECT_NE(error_of("cosine").find("needs T_max"), std::string::npos);
  EXPECT_NE(error_of("step:step_size=2,step_size=3").find("twice"), std::string::npos);
  EXPECT_NE(error_of("cosine:30").find("is not KEY=VALUE"), std::string::npos);
  EXPECT_NE(error_of("").find("no name"), std::string::npos);
  EXPECT_NE(error_of("cosine+step").find("only a warm-up"), std::string::npos);
  EXPECT_NE(error_of("warmup:50+cosine", steps(40)).find("leaves no steps"), std::string::npos);
  EXPECT_NE(error_of("warmup:5+plateau", steps(40)).find("needs a metric"), std::string::npos);
  EXPECT_NE(error_of("warmup:0+cosine", steps(40)).find(">= 1"), std::string::npos);
  // Values reach the constructors' checks.
  EXPECT_NE(error_of("cosine:T_max=0").find("T_max must be >= 1"), std::string::npos);
}

}  // namespace
