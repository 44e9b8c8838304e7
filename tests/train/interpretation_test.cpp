// Most confused pairs and top losses against direct computations on fixed predictions.
#include <algorithm>
#include <array>
#include <numeric>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/train/interpretation.h>
#include <tlkit/train/metrics.h>

namespace {

// Confusion (rows: true) counted by hand from a fixed list of (true, predicted) pairs.
TEST(Interpretation, MostConfusedPairsEqualCountingByHand) {
  // true:      0 0 0 1 1 1 1 2 2 2 2 2
  // predicted: 0 1 1 2 2 2 0 2 1 0 0 2
  const auto confusion = torch::tensor({2, 2, 0,   // class 0: 0->1 twice
                                        1, 0, 3,   // class 1: 1->2 three times, 1->0 once
                                        2, 1, 2},  // class 2: 2->0 twice, 2->1 once
                                       torch::kLong)
                             .view({3, 3});
  const auto pairs = tlkit::train::most_confused(confusion);
  ASSERT_EQ(pairs.size(), 5u);
  // By count, then by (true, predicted): (1,2)x3, (0,1)x2, (2,0)x2, (1,0)x1, (2,1)x1.
  const std::vector<std::array<std::int64_t, 3>> expected{
      {1, 2, 3}, {0, 1, 2}, {2, 0, 2}, {1, 0, 1}, {2, 1, 1}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(pairs[i].actual, expected[i][0]) << i;
    EXPECT_EQ(pairs[i].predicted, expected[i][1]) << i;
    EXPECT_EQ(pairs[i].count, expected[i][2]) << i;
  }
  EXPECT_EQ(tlkit::train::most_confused(confusion, 2).size(), 3u);
  const auto text = tlkit::train::format_most_confused(pairs, confusion, {"ant", "bee", "cat"}, 2);
  EXPECT_NE(text.find("bee -> cat: 3 images (75.0% of bee)"), std::string::npos) << text;
  EXPECT_NE(text.find("and 3 more pairs"), std::string::npos) << text;

  const auto normalised = tlkit::train::row_normalised(confusion);
  EXPECT_NEAR(normalised[1][2].item<double>(), 0.75, 1e-12);
  EXPECT_NEAR(normalised[2][0].item<double>(), 0.4, 1e-12);
  EXPECT_TRUE(torch::allclose(normalised.sum(1), torch::ones({3}, torch::kDouble)));
}

// The outcomes recorded through evaluate() on a fixed network and the top losses from them equal
// sorting the wrong images by -log softmax(logits)[true] directly.
TEST(Interpretation, TopLossesEqualADirectRanking) {
  torch::manual_seed(4);
  const auto logits = torch::randn({40, 4}, torch::kDouble) * 3;
  const auto targets = torch::randint(0, 4, {40}, torch::kLong);
  tlkit::train::ExampleOutcomes outcomes;
  outcomes.add(torch::log_softmax(logits, 1).slice(0, 0, 25), targets.slice(0, 0, 25),
               torch::arange(100, 125));
  outcomes.add(torch::log_softmax(logits, 1).slice(0, 25), targets.slice(0, 25),
               torch::arange(125, 140));
  ASSERT_EQ(outcomes.size(), 40u);

  const auto loss = -torch::log_softmax(logits, 1).gather(1, targets.unsqueeze(1)).squeeze(1);
  const auto predicted = logits.argmax(1);
  std::vector<std::int64_t> wrong;
  for (std::int64_t i = 0; i < 40; ++i)
    if (predicted[i].item<std::int64_t>() != targets[i].item<std::int64_t>()) wrong.push_back(i);
  std::sort(wrong.begin(), wrong.end(), [&](std::int64_t a, std::int64_t b) {
    return loss[a].item<double>() > loss[b].item<double>();
  });
  ASSERT_GT(wrong.size(), 6u);
  const auto top = tlkit::train::top_losses(outcomes, 6);
  ASSERT_EQ(top.size(), 6u);
  for (size_t i = 0; i < top.size(); ++i) {
    const auto row = wrong[i];
    EXPECT_EQ(top[i].row, row) << i;
    EXPECT_EQ(top[i].index, 100 + row) << i;
    EXPECT_EQ(top[i].target, targets[row].item<std::int64_t>());
    EXPECT_EQ(top[i].predicted, predicted[row].item<std::int64_t>());
    EXPECT_NEAR(top[i].loss, loss[row].item<double>(), 1e-12);
    EXPECT_NEAR(top[i].probability, torch::softmax(logits[row], 0).max().item<double>(), 1e-12);
  }
  EXPECT_EQ(tlkit::train::top_losses(outcomes, 1000).size(), wrong.size());  // only wrong ones
}

// evaluate() with outcomes: one per image, with the dataset's order when there are no indices.
TEST(Interpretation, EvaluateRecordsAnOutcomePerImage) {
  torch::manual_seed(6);
  auto linear = torch::nn::Linear(5, 3);
  auto network = tlkit::train::ModuleNetwork::from(linear);
  const auto x = torch::randn({23, 5});
  const auto y = torch::randint(0, 3, {23}, torch::kLong);
  tlkit::train::TensorBatchSource source(x, y, 8, false);
  tlkit::train::ExampleOutcomes outcomes;
  const auto evaluation = tlkit::train::evaluate(*network, source, 3, torch::kCPU, 2, outcomes);
  ASSERT_EQ(outcomes.size(), 23u);
  EXPECT_EQ(outcomes.index[0], -1);
  const double mean_loss = std::accumulate(outcomes.loss.begin(), outcomes.loss.end(), 0.0) / 23.0;
  EXPECT_NEAR(mean_loss, evaluation.loss, 1e-9);
  std::int64_t right = 0;
  for (size_t i = 0; i < outcomes.size(); ++i) right += outcomes.predicted[i] == outcomes.target[i];
  EXPECT_NEAR(static_cast<double>(right) / 23.0, evaluation.accuracy, 1e-12);
}

}  // namespace
