// The shared pieces of decisions on small data: one stratified k-fold helper, one comparison of
// monitored scores, the one-standard-error choice among cross-validated options, pooled datasets.

#include <tlkit/core/error.h>
#include <tlkit/data/subset.h>
#include <tlkit/pipeline/cv_options.h>
#include <tlkit/pipeline/select.h>
#include <tlkit/train/monitor.h>

#include <cmath>
#include <map>
#include <set>

#include <gtest/gtest.h>

namespace {

using tlkit::pipeline::FoldScores;

std::vector<int64_t> labels_with(const std::vector<int>& per_class) {
  std::vector<int64_t> labels;
  for (size_t c = 0; c < per_class.size(); ++c)
    for (int i = 0; i < per_class[c]; ++i) labels.push_back(static_cast<int64_t>(c));
  return labels;
}

TEST(StratifiedFolds, EveryFoldHoldsEachClassEvenlyAndFoldSizesDifferByAtMostOne) {
  const auto labels = labels_with({7, 5, 12, 3});
  for (std::int64_t k : {2, 3}) {
    const auto fold = tlkit::data::stratified_folds(labels, k, 42);
    ASSERT_EQ(fold.size(), labels.size());
    std::map<std::pair<int64_t, int64_t>, int> per;  // (class, fold) -> count
    std::vector<int> size(static_cast<size_t>(k), 0);
    for (size_t i = 0; i < labels.size(); ++i) {
      ASSERT_GE(fold[i], 0);
      ASSERT_LT(fold[i], k);
      ++per[{labels[i], fold[i]}];
      ++size[static_cast<size_t>(fold[i])];
    }
    for (int64_t c = 0; c < 4; ++c) {
      int lo = 1 << 30, hi = 0;
      for (int64_t f = 0; f < k; ++f) {
        lo = std::min(lo, per[{c, f}]);
        hi = std::max(hi, per[{c, f}]);
      }
      EXPECT_LE(hi - lo, 1) << "class " << c << ", " << k << " folds";
    }
    EXPECT_LE(*std::max_element(size.begin(), size.end()) -
                  *std::min_element(size.begin(), size.end()),
              1);
  }
}

TEST(StratifiedFolds, SeededAndReproducible) {
  const auto labels = labels_with({10, 10, 10});
  EXPECT_EQ(tlkit::data::stratified_folds(labels, 5, 1), tlkit::data::stratified_folds(labels, 5, 1));
  EXPECT_NE(tlkit::data::stratified_folds(labels, 5, 1), tlkit::data::stratified_folds(labels, 5, 2));
  EXPECT_THROW(tlkit::data::stratified_folds(labels, 1, 1), tlkit::Error);
}

TEST(StratifiedFolds, UsableFoldsAreCappedByTheSmallestClass) {
  EXPECT_EQ(tlkit::data::usable_folds(labels_with({30, 30}), 5), 5);
  EXPECT_EQ(tlkit::data::usable_folds(labels_with({30, 3, 8}), 5), 3);
  EXPECT_EQ(tlkit::data::usable_folds(labels_with({2, 2}), 5), 2);
  EXPECT_EQ(tlkit::data::usable_folds(labels_with({1, 4}), 5), 1);
  EXPECT_EQ(tlkit::data::usable_folds({}, 5), 0);
}

tlkit::train::Evaluation scored(double loss, double accuracy) {
  tlkit::train::Evaluation e;
  e.loss = loss;
  e.accuracy = accuracy;
  return e;
}

TEST(Monitor, OneComparisonForLossAndAccuracy) {
  using tlkit::train::better;
  using tlkit::train::improves;
  EXPECT_TRUE(better(scored(0.3, 0.5), scored(0.4, 0.9), "val_loss"));
  EXPECT_FALSE(better(scored(0.4, 0.9), scored(0.3, 0.5), "val_loss"));
  EXPECT_TRUE(better(scored(0.9, 0.8), scored(0.3, 0.7), "val_acc"));
  // A tie in accuracy goes to the lower loss; an equal score is not better.
  EXPECT_TRUE(better(scored(0.2, 0.8), scored(0.3, 0.8), "val_acc"));
  EXPECT_FALSE(better(scored(0.3, 0.8), scored(0.3, 0.8), "val_acc"));
  EXPECT_FALSE(better(scored(NAN, 0.8), scored(0.3, 0.8), "val_loss"));
  EXPECT_FALSE(better(scored(0.1, NAN), scored(0.3, 0.8), "val_acc"));
  EXPECT_TRUE(better(scored(0.3, 0.8), scored(NAN, 0.8), "val_loss"));
  // min_delta: an improvement must exceed it.
  EXPECT_FALSE(improves(0.49, 0.5, false, 0.02));
  EXPECT_TRUE(improves(0.47, 0.5, false, 0.02));
  EXPECT_TRUE(improves(0.53, 0.5, true, 0.02));
  EXPECT_FALSE(improves(NAN, 0.5, true));
}

TEST(Monitor, TheTrackerDecidesThroughTheSameComparison) {
  tlkit::train::MetricTracker tracker("val_loss", tlkit::train::Mode::kAuto, 0.02);
  tlkit::train::Metrics m;
  m.set("val_loss", 0.5);
  EXPECT_TRUE(tracker.update(m));
  m.set("val_loss", 0.49);
  EXPECT_FALSE(tracker.update(m));  // within min_delta
  m.set("val_loss", NAN);
  EXPECT_FALSE(tracker.update(m));
  m.set("val_loss", 0.45);
  EXPECT_TRUE(tracker.update(m));
  EXPECT_EQ(*tracker.best(), 0.45);
}

TEST(OneStandardError, KeepsThePreferredOptionWhenTheDifferenceIsNoise) {
  // The preferred option is slightly worse on average, well within the folds' spread.
  std::vector<FoldScores> options{{"full length", {0.50, 0.70, 0.40, 0.60}, {0.8, 0.7, 0.9, 0.8}},
                                  {"shorter", {0.48, 0.66, 0.42, 0.58}, {0.8, 0.7, 0.9, 0.8}}};
  std::string why;
  EXPECT_EQ(tlkit::pipeline::choose_within_one_se(options, "val_loss", &why), 0u);
  EXPECT_NE(why.find("standard error"), std::string::npos) << why;
}

TEST(OneStandardError, MovesWhenTheBestIsClearlyBetter) {
  std::vector<FoldScores> options{{"full length", {0.90, 0.95, 0.92}, {0.6, 0.6, 0.6}},
                                  {"shorter", {0.40, 0.42, 0.41}, {0.8, 0.8, 0.8}},
                                  {"head", {0.41, 0.43, 0.40}, {0.8, 0.8, 0.8}}};
  std::string why;
  EXPECT_EQ(tlkit::pipeline::choose_within_one_se(options, "val_loss", &why), 1u) << why;
  // By accuracy: "full length" is clearly worse, the other two tie within noise.
  EXPECT_EQ(tlkit::pipeline::choose_within_one_se(options, "val_acc"), 1u);
}

TEST(OneStandardError, NeverChoosesANonFiniteOption) {
  std::vector<FoldScores> options{{"diverged", {NAN, NAN}, {0.1, 0.1}},
                                  {"fine", {0.5, 0.6}, {0.8, 0.7}}};
  EXPECT_EQ(tlkit::pipeline::choose_within_one_se(options, "val_loss"), 1u);
  EXPECT_NEAR(tlkit::pipeline::fold_mean({1, 2, 3}), 2.0, 1e-12);
  EXPECT_NEAR(tlkit::pipeline::fold_std({1, 2, 3}), 1.0, 1e-12);
}

}  // namespace

namespace {

// A dataset of `n` samples of one class layout, sources "name/i".
class Fake : public tlkit::data::Dataset {
 public:
  Fake(std::string name, std::vector<int64_t> labels, std::vector<std::string> classes)
      : name_(std::move(name)), labels_(std::move(labels)), classes_(std::move(classes)) {}
  size_t size() const override { return labels_.size(); }
  tlkit::data::Sample get(size_t i) const override {
    return {at::full({2, 2, 1}, static_cast<int64_t>(i), at::kByte), labels_.at(i), source(i)};
  }
  std::string source(size_t i) const override { return name_ + "/" + std::to_string(i); }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::vector<int64_t> labels() const override { return labels_; }
  std::string describe() const override { return name_; }

 private:
  std::string name_;
  std::vector<int64_t> labels_;
  std::vector<std::string> classes_;
};

TEST(Concat, PoolsTrainAndValInOrder) {
  auto train = std::make_shared<Fake>("train", std::vector<int64_t>{0, 1, 1}, std::vector<std::string>{"a", "b"});
  auto val = std::make_shared<Fake>("val", std::vector<int64_t>{1, 0}, std::vector<std::string>{"a", "b"});
  tlkit::data::Concat pooled({train, val}, "all");
  ASSERT_EQ(pooled.size(), 5u);
  EXPECT_EQ(pooled.labels(), (std::vector<int64_t>{0, 1, 1, 1, 0}));
  EXPECT_EQ(pooled.source(2), "train/2");
  EXPECT_EQ(pooled.source(3), "val/0");
  EXPECT_EQ(pooled.get(4).label, 0);
  EXPECT_EQ(pooled.get(4).source, "val/1");
  EXPECT_THROW(pooled.get(5), tlkit::Error);
  auto other = std::make_shared<Fake>("other", std::vector<int64_t>{0}, std::vector<std::string>{"a", "c"});
  EXPECT_THROW(tlkit::data::Concat({train, other}, "mixed"), tlkit::Error);
}

}  // namespace

namespace tlkit::pipeline::detail {
namespace {

// Two folds, three epochs: held-out losses per epoch for the last weights and the EMA.
std::vector<FoldResult> two_folds() {
  FoldResult a, b;
  a.head_loss = 0.9, b.head_loss = 1.1;
  a.head_acc = 0.6, b.head_acc = 0.5;
  a.loss = {0.8, 0.5, 0.7}, b.loss = {0.8, 0.6, 0.9};
  a.acc = {0.6, 0.8, 0.7}, b.acc = {0.6, 0.7, 0.6};
  a.ema_loss = {0.85, 0.55, 0.6}, b.ema_loss = {0.85, 0.65, 0.65};
  a.ema_acc = {0.6, 0.8, 0.9}, b.ema_acc = {0.6, 0.7, 0.7};
  return {a, b};
}

TEST(StageTwoOptions, EveryLengthLastAndEmaInPreferenceOrderThenTheHead) {
  const auto o = stage_two_options(two_folds(), 3, /*ema=*/true);
  ASSERT_EQ(o.scores.size(), 7u);  // 3 epochs x (last, EMA) + the head
  EXPECT_EQ(o.scores[0].name, "stage 2 last (3 epochs)");
  EXPECT_EQ(o.scores[1].name, "stage 2 EMA (3 epochs)");
  EXPECT_EQ(o.scores[4].name, "stage 2 last after 1 epoch");
  EXPECT_EQ(o.what[6], std::make_pair(std::string("stage 1 head"), std::int64_t{0}));
  EXPECT_EQ(o.scores[2].loss, (std::vector<double>{0.5, 0.6}));  // last after 2 epochs
  EXPECT_EQ(o.scores[6].accuracy, (std::vector<double>{0.6, 0.5}));
  const auto no_ema = stage_two_options(two_folds(), 3, /*ema=*/false);
  EXPECT_EQ(no_ema.scores.size(), 4u);
}

TEST(StageTwoOptions, TheBestStageTwoOptionIgnoresTheHeadAlone) {
  auto folds = two_folds();
  for (auto& f : folds) f.head_loss = 0.01;  // the head alone is best, but is not stage 2
  const auto o = stage_two_options(folds, 3, true);
  EXPECT_EQ(o.scores[best_stage_two_option(o, "val_loss")].name, "stage 2 last after 2 epochs");
  EXPECT_EQ(o.scores[best_stage_two_option(o, "val_acc")].name, "stage 2 EMA (3 epochs)");
  const auto table = options_table(o, 2, 3, "val_loss");
  EXPECT_NE(table.find("| stage 2 last after 2 epochs (chosen) | 0.5500 +- 0.0707 |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| stage 1 head alone | 0.0100 +- 0.0000 |"), std::string::npos) << table;
}

}  // namespace
}  // namespace tlkit::pipeline::detail

// Stage 2's folds are planned from their arithmetic alone (no measured seconds goes in): the
// same model, folder and settings decide the same way under any load.
TEST(StageTwoPlan, FoldsRunWithinTheBudgetOfArithmetic) {
  using tlkit::pipeline::detail::plan_stage_two;
  const double budget = tlkit::pipeline::detail::stage_two_budget_flops(false);
  EXPECT_EQ(budget, 6e12);
  EXPECT_EQ(tlkit::pipeline::detail::stage_two_budget_flops(true), 20 * budget);
  // A 32x32 VGG-style backbone (0.02 GFLOP forward, 0.06 a step), 300 images, 30 epochs, 3
  // folds with an EMA: 30 x 300 x (2 + 2/3) image-steps; with and without augmentation fit.
  const double small_step = 3 * 0.0198e9;
  auto plan = plan_stage_two(small_step, 300, 30, 3, true, true, false, budget);
  EXPECT_NEAR(plan.flops, small_step * 30 * 300 * (2 + 2.0 / 3), 1e-3 * plan.flops);
  EXPECT_TRUE(plan.run_folds);
  EXPECT_TRUE(plan.without_augment);
  // Without an EMA the held images are validated once per epoch.
  EXPECT_NEAR(plan_stage_two(small_step, 300, 30, 3, false, true, false, budget).flops,
              small_step * 30 * 300 * (2 + 1.0 / 3), 1e-3 * plan.flops);
  // No comparison asked for: only the configured augmentation.
  EXPECT_FALSE(plan_stage_two(small_step, 300, 30, 3, true, false, false, budget).without_augment);
  // VGG16 at 224 (30.9 GFLOP forward) on 160 images, 30 epochs: far over; --cv-folds forces it.
  const double vgg16_step = 3 * 30.9e9;
  plan = plan_stage_two(vgg16_step, 160, 30, 3, true, true, false, budget);
  EXPECT_FALSE(plan.run_folds);
  EXPECT_FALSE(plan.without_augment);
  plan = plan_stage_two(vgg16_step, 160, 30, 3, true, true, true, budget);
  EXPECT_TRUE(plan.run_folds);
  EXPECT_FALSE(plan.without_augment);
  // Between once and twice the budget: the folds run with the configured augmentation only.
  const double images = 0.75 * budget / (small_step * 30 * (2 + 2.0 / 3));
  plan = plan_stage_two(small_step, images, 30, 3, true, true, false, budget);
  EXPECT_TRUE(plan.run_folds);
  EXPECT_FALSE(plan.without_augment);
  // Identical inputs, identical plans (nothing else is read).
  const auto again = plan_stage_two(small_step, images, 30, 3, true, true, false, budget);
  EXPECT_EQ(again.flops, plan.flops);
}
