// Stratified splits and samples, and the portable random helpers behind them.

#include <tlkit/core/error.h>
#include <tlkit/data/random.h>
#include <tlkit/data/subset.h>

#include <algorithm>
#include <cmath>
#include <set>

#include <gtest/gtest.h>

using namespace tlkit::data;

namespace {

// 3 classes of 50, 30 and 7 samples, interleaved.
std::vector<int64_t> uneven_labels() {
  std::vector<int64_t> labels;
  for (int i = 0; i < 50; ++i) {
    labels.push_back(0);
    if (i < 30) labels.push_back(1);
    if (i < 7) labels.push_back(2);
  }
  return labels;
}

std::vector<size_t> counts_of(const std::vector<int64_t>& labels,
                              const std::vector<size_t>& indices) {
  std::vector<size_t> counts(3, 0);
  for (size_t index : indices) ++counts[static_cast<size_t>(labels[index])];
  return counts;
}

}  // namespace

TEST(DataRandom, PermutationIsDeterminedBySeed) {
  const auto a = permutation(100, 5), b = permutation(100, 5), c = permutation(100, 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);
}

TEST(DataRandom, UniformBelowCoversItsRangeEvenly) {
  std::mt19937_64 rng(3);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) ++counts[uniform_below(rng, 7)];
  for (int count : counts) EXPECT_NEAR(count, 10000, 400);
  for (int i = 0; i < 1000; ++i) {
    const double u = uniform01(rng);
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
  EXPECT_NE(derive_seed(1, 2, 3), derive_seed(1, 3, 2));
  EXPECT_NE(derive_seed(1, 0, 0), derive_seed(2, 0, 0));
}

TEST(DataSubset, StratifiedSplitKeepsClassProportions) {
  const auto labels = uneven_labels();
  const auto split = stratified_split(labels, 0.2, 42);
  EXPECT_EQ(counts_of(labels, split.val), (std::vector<size_t>{10, 6, 1}));  // round(n_c * 0.2)
  EXPECT_EQ(counts_of(labels, split.train), (std::vector<size_t>{40, 24, 6}));
  std::set<size_t> all(split.train.begin(), split.train.end());
  for (size_t index : split.val)
    EXPECT_TRUE(all.insert(index).second) << "index " << index << " in both";
  EXPECT_EQ(all.size(), labels.size());
  EXPECT_TRUE(std::is_sorted(split.val.begin(), split.val.end()));
}

TEST(DataSubset, StratifiedSplitIsDeterministicPerSeed) {
  const auto labels = uneven_labels();
  EXPECT_EQ(stratified_split(labels, 0.3, 7).val, stratified_split(labels, 0.3, 7).val);
  EXPECT_NE(stratified_split(labels, 0.3, 7).val, stratified_split(labels, 0.3, 8).val);
  EXPECT_TRUE(stratified_split(labels, 0.0, 7).val.empty());
}

TEST(DataSubset, StratifiedSplitNeverEmptiesAClassFromTrain) {
  const std::vector<int64_t> labels = {0, 0, 0, 1};
  const auto split = stratified_split(labels, 0.9, 1);
  EXPECT_EQ(counts_of(labels, split.train)[1], 1u);
  EXPECT_EQ(counts_of(labels, split.train)[0], 1u);
}

TEST(DataSubset, BadFractionIsAClearError) {
  EXPECT_THROW(stratified_split({0, 1}, 1.0, 0), tlkit::Error);
  EXPECT_THROW(stratified_split({0, 1}, -0.1, 0), tlkit::Error);
}

TEST(DataSubset, StratifiedSampleKeepsEveryClassInProportion) {
  const auto labels = uneven_labels();  // 50 / 30 / 7 of 87
  const auto chosen = stratified_sample(labels, 29, 3);
  ASSERT_EQ(chosen.size(), 29u);
  const auto counts = counts_of(labels, chosen);
  for (size_t c = 0; c < 3; ++c) {
    const double expected = 29.0 * std::vector<double>{50, 30, 7}[c] / 87.0;
    EXPECT_LE(std::abs(static_cast<double>(counts[c]) - expected), 1.0) << "class " << c;
  }
  EXPECT_EQ(stratified_sample(labels, 29, 3), chosen);
  EXPECT_NE(stratified_sample(labels, 29, 4), chosen);
  EXPECT_EQ(stratified_sample(labels, 1000, 3).size(), labels.size());
}
