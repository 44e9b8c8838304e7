// The plan of stage 1's head candidates: the rule on given costs, and the costs measured on a
// small model (which must leave the model as it was).
#include <tlkit/pipeline/head_plan.h>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/model/classifier.h>

#include "model/fixtures.h"
#include "support/test_support.h"

namespace tlkit::pipeline {
namespace {

HeadCost cost(const std::string& head, const std::string& layer, double seconds_per_step,
              double cache_bytes, bool exact = false) {
  HeadCost c;
  c.head = head;
  c.feature_layer = layer;
  c.exact = exact;
  c.settings = exact ? 7 : 1;
  c.folds = 5;
  c.fits = exact ? 36 : 6;
  c.steps = exact ? 100 : 504;
  c.step_seconds = seconds_per_step;
  c.cache_bytes = cache_bytes;
  return c;
}

TEST(HeadPlan, BudgetIsOneBackbonePassOrTheMinimum) {
  const auto slow = head_budget(42, 160);
  EXPECT_DOUBLE_EQ(slow.train_seconds, 42);
  EXPECT_TRUE(test::contains(slow.why, "one backbone pass over 160 images")) << slow.why;
  const auto fast = head_budget(0.5, 160);
  EXPECT_DOUBLE_EQ(fast.train_seconds, 30);
  EXPECT_TRUE(test::contains(fast.why, "minimum")) << fast.why;
  EXPECT_DOUBLE_EQ(fast.cache_bytes, 1024.0 * 1024 * 1024);
}

TEST(HeadPlan, KeepsTheClassificationLayerAndWhatFitsTheBudget) {
  const auto budget = head_budget(42, 160);
  const std::vector<HeadCost> costs{
      // Over every limit, kept all the same: every plan falls back to it.
      cost("classifier.6", "classifier.4", 1.0, 2e9, true),
      cost("classifier.0", "avgpool", 0.3, 16e6),       // 504 x 6 x 0.3 s = 907 s
      cost("features.24", "features.23", 1e-3, 1.5e9),  // cache over 1 GiB
      cost("features.28", "features.27", 1e-3, 1e6),    // 3 s
      cost("features.26", "features.23", 1e-3, 1e6)};   // 3 s, a layer already cached
  const auto plan = plan_heads(costs, budget);
  EXPECT_EQ(plan.heads(), (std::vector<std::string>{"classifier.6", "features.28", "features.26"}));
  EXPECT_EQ(plan.feature_layers(),
            (std::vector<std::string>{"classifier.4", "features.27", "features.23"}));
  ASSERT_EQ(plan.dropped.size(), 2u);
  EXPECT_EQ(plan.dropped[0].first.head, "classifier.0");
  EXPECT_TRUE(test::contains(plan.dropped[0].second, "~907 s of head training"))
      << plan.dropped[0].second;
  EXPECT_TRUE(test::contains(plan.dropped[0].second, "> budget 42 s")) << plan.dropped[0].second;
  EXPECT_EQ(plan.dropped[1].first.head, "features.24");
  EXPECT_TRUE(test::contains(plan.dropped[1].second, "1.4 GiB of cached features > 1.0 GiB"))
      << plan.dropped[1].second;
  EXPECT_NEAR(plan.train_seconds(), 36 * 100 * 1.0 + 2 * 504 * 6 * 1e-3, 1e-9);
  const auto text = plan.describe();
  EXPECT_TRUE(test::contains(text, "classifier.6 (exact, 7 L2 x 5 folds + 1 fits, ~3600 s)"))
      << text;
  EXPECT_TRUE(test::contains(text, "features.28 (504 steps x 6 fits, ~3.0 s)")) << text;
  EXPECT_TRUE(test::contains(text, "classifier.0 dropped (~907 s")) << text;
}

TEST(HeadPlan, AHeadTimedOnOneImageOnlyIsALowerBound) {
  auto c = cost("features.24", "features.23", 0.2, 1e6);
  c.lower_bound = true;
  const auto plan =
      plan_heads({cost("classifier.6", "classifier.4", 1e-4, 1e6, true), c}, head_budget(42, 160));
  ASSERT_EQ(plan.dropped.size(), 1u);
  EXPECT_TRUE(test::contains(plan.dropped[0].second, ">= 605 s")) << plan.dropped[0].second;
}

// On vgg_tiny every head is cheap; its costs are measured without changing the model.
TEST(HeadPlan, MeasuresCostsWithoutChangingTheModel) {
  auto model = model::Classifier::load(test::tiny_model());
  model.freeze_all();
  model.train(true);
  std::vector<at::Tensor> before;
  for (const auto& [name, p] : model.named_parameters()) before.push_back(p.detach().clone());
  const int threads = at::get_num_threads();
  HeadWork work;
  work.images = 100;
  work.train_images = 100;
  work.folds = 5;
  work.classes = 10;
  work.steps = 50;
  work.batch_size = 8;

  const auto exact = measure_head(model, "classifier.6", work, 30);
  EXPECT_TRUE(exact.exact);
  EXPECT_EQ(exact.feature_layer, "classifier.4");
  EXPECT_EQ(exact.feature_dim, 16);
  EXPECT_EQ(exact.settings, 7);
  EXPECT_EQ(exact.folds, 5);
  EXPECT_EQ(exact.fits, 7 * 5 + 1);
  EXPECT_EQ(exact.steps, 100);
  EXPECT_GT(exact.step_seconds, 0);
  EXPECT_DOUBLE_EQ(exact.cache_bytes, 100.0 * 16 * 4);

  const auto conv = measure_head(model, "features.3", work, 30);
  EXPECT_FALSE(conv.exact);
  EXPECT_FALSE(conv.lower_bound);
  EXPECT_EQ(conv.feature_layer, "features.2");
  EXPECT_EQ(conv.feature_dim, 4 * 8 * 8);
  EXPECT_EQ(conv.settings, 1);
  EXPECT_EQ(conv.fits, 6);
  EXPECT_EQ(conv.steps, 50);
  EXPECT_GT(conv.step_seconds, 0);
  EXPECT_LT(conv.train_seconds(), 30);

  // A zero budget: the one-image timing already exceeds it, the full batch is not timed.
  const auto over = measure_head(model, "classifier.0", work, 0);
  EXPECT_TRUE(over.lower_bound);
  EXPECT_EQ(plan_heads({exact, over}, head_budget(0, 100, 0)).dropped.size(), 1u);

  // Gradient settings: the classification layer is then trained like any other head.
  work.exact_solver = false;
  EXPECT_FALSE(measure_head(model, "classifier.6", work, 30).exact);

  EXPECT_TRUE(model.is_training());
  EXPECT_EQ(at::get_num_threads(), threads);  // timed on one thread too, and set back
  size_t i = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    EXPECT_FALSE(p.requires_grad()) << name;
    EXPECT_FALSE(p.grad().defined()) << name;
    EXPECT_TRUE(torch::equal(p, before[i++])) << name;
  }

  const auto pass = estimate_backbone_pass(model, {"classifier.4", "features.2"}, 1000);
  EXPECT_GT(pass, 0);
  EXPECT_TRUE(model.is_training());
}

}  // namespace
}  // namespace tlkit::pipeline
