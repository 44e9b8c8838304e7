// Class-balanced sampling (data/sampler.h): torch's WeightedRandomSampler with 1 / count weights,
// deterministic from the seed, the same on any number of loader shards; and the imbalance warning.
#include <tlkit/data/sampler.h>

#include <algorithm>
#include <map>
#include <numeric>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/data/dataset.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/random.h>
#include <tlkit/data/transforms.h>

namespace tlkit::data {
namespace {

// 95 images of class 0, 5 of class 1, 20 of class 2 (labels interleaved).
std::vector<int64_t> skewed_labels() {
  std::vector<int64_t> labels;
  for (int i = 0; i < 95; ++i) labels.push_back(0);
  for (int i = 0; i < 5; ++i) labels.insert(labels.begin() + i * 7, 1);
  for (int i = 0; i < 20; ++i) labels.insert(labels.begin() + i * 5 + 2, 2);
  return labels;
}

class LabelledDataset : public Dataset {
 public:
  explicit LabelledDataset(std::vector<int64_t> labels) : labels_(std::move(labels)) {}
  size_t size() const override { return labels_.size(); }
  Sample get(size_t index) const override {
    return Sample{torch::full({1, 1, 1}, static_cast<int64_t>(index % 256), torch::kUInt8),
                  labels_[index], "item" + std::to_string(index)};
  }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::vector<int64_t> labels() const override { return labels_; }
  std::string describe() const override { return "labelled dataset"; }

 private:
  std::vector<int64_t> labels_;
  std::vector<std::string> classes_{"common", "rare", "middle"};
};

TEST(BalancedOrder, DrawsEveryClassEquallyOftenFromTheSeedAlone) {
  const auto labels = skewed_labels();
  const auto order = balanced_order(labels, 11);
  ASSERT_EQ(order.size(), labels.size());
  EXPECT_EQ(order, balanced_order(labels, 11));  // the seed alone decides
  EXPECT_NE(order, balanced_order(labels, 12));
  // Over 200 epochs' draws (24,000), each class's share is 1/3 (binomial std 0.003; 0.02 is
  // over 6 std); the plain shuffle would give 95/120, 5/120, 20/120.
  std::vector<double> per_class(3, 0);
  std::map<size_t, int> rare_images;
  double draws = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    for (const auto index : balanced_order(labels, seed)) {
      ASSERT_LT(index, labels.size());
      per_class[static_cast<size_t>(labels[index])] += 1;
      if (labels[index] == 1) ++rare_images[index];
      ++draws;
    }
  }
  for (const double count : per_class) EXPECT_NEAR(count / draws, 1.0 / 3, 0.02);
  // Within a class every image is equally likely: each of the 5 rare ones about 1/5 of theirs.
  ASSERT_EQ(rare_images.size(), 5u);
  for (const auto& [index, count] : rare_images)
    EXPECT_NEAR(count / per_class[1], 0.2, 0.03) << "image " << index;
}

// The loader's balanced epochs: the same images in the same places for 1 and 2 shards (the ranks'
// batches together are the one process's batch), and independent of the number of workers.
TEST(BalancedOrder, LoaderEpochsDoNotDependOnShardsOrWorkers) {
  auto dataset = std::make_shared<LabelledDataset>(skewed_labels());
  LoaderOptions options;
  options.batch_size = 8;
  options.seed = 5;
  options.balanced = true;
  options.workers = 0;
  DataLoader one(dataset, nullptr, options);
  const auto whole = one.order(3);
  ASSERT_EQ(whole.size(), 120u);
  EXPECT_NE(whole, one.order(4));
  options.workers = 3;
  EXPECT_EQ(DataLoader(dataset, nullptr, options).order(3), whole);
  options.shards = 2;
  std::vector<std::vector<size_t>> shards;
  for (size_t shard = 0; shard < 2; ++shard) {
    options.shard = shard;
    options.batch_size = 4;
    shards.push_back(DataLoader(dataset, nullptr, options).order(3));
  }
  for (size_t k = 0; k < whole.size(); ++k) EXPECT_EQ(shards[k % 2][k / 2], whole[k]) << k;
  // Without --sampler balanced the order is the permutation it always was.
  options = LoaderOptions{};
  options.seed = 5;
  options.workers = 0;
  auto order = DataLoader(dataset, nullptr, options).order(3);
  std::sort(order.begin(), order.end());
  std::vector<size_t> all(120);
  std::iota(all.begin(), all.end(), size_t{0});
  EXPECT_EQ(order, all);
}

// Adds a draw of the sample's generator to the image: shows which random stream each row got.
class RandomOffset : public Transform {
 public:
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override {
    return image.to(torch::kDouble) + uniform01(rng);
  }
};

// Rows of epoch `e` in order: (dataset index, pixel value).
std::vector<std::pair<size_t, double>> epoch_rows(DataLoader& loader, size_t e) {
  std::vector<std::pair<size_t, double>> rows;
  loader.epoch(e);
  while (auto batch = loader.next())
    for (size_t r = 0; r < batch->indices.size(); ++r)
      rows.emplace_back(batch->indices[r],
                        batch->images[static_cast<std::int64_t>(r)].flatten()[0].item<double>());
  return rows;
}

// An image drawn twice in a balanced epoch gets two augmentations, each the same on 1 or 2 shards.
TEST(BalancedOrder, EachDrawGetsItsOwnAugmentationOnAnyNumberOfShards) {
  std::vector<int64_t> labels(12, 1);
  labels[0] = 0;  // one image of class 0: about half of every epoch's draws
  auto dataset = std::make_shared<LabelledDataset>(labels);
  auto transform = std::make_shared<RandomOffset>();
  LoaderOptions options;
  options.batch_size = 4;
  options.seed = 9;
  options.balanced = true;
  options.workers = 0;
  DataLoader one(dataset, transform, options);
  const auto rows = epoch_rows(one, 2);
  ASSERT_EQ(rows.size(), 12u);
  std::vector<double> first_image;
  for (const auto& [index, value] : rows)
    if (index == 0) first_image.push_back(value);
  ASSERT_GE(first_image.size(), 2u);
  std::sort(first_image.begin(), first_image.end());
  EXPECT_EQ(std::adjacent_find(first_image.begin(), first_image.end()), first_image.end());
  options.shards = 2;
  options.batch_size = 2;
  for (size_t shard = 0; shard < 2; ++shard) {
    options.shard = shard;
    DataLoader part(dataset, transform, options);
    const auto mine = epoch_rows(part, 2);
    ASSERT_EQ(mine.size(), 6u);
    for (size_t k = 0; k < mine.size(); ++k) EXPECT_EQ(mine[k], rows[2 * k + shard]) << k;
  }
}

TEST(ImbalanceWarning, NamesTheLargestAndSmallestClassFromFiveTimes) {
  const std::vector<std::string> names{"cats", "dogs", "owls"};
  const auto warning = imbalance_warning({50, 10, 30}, names);
  EXPECT_NE(warning.find("'cats' has 50 images"), std::string::npos) << warning;
  EXPECT_NE(warning.find("'dogs' only 10"), std::string::npos) << warning;
  EXPECT_NE(warning.find("5.0x"), std::string::npos) << warning;
  EXPECT_EQ(imbalance_warning({49, 10, 30}, names), "");  // under 5x: quiet
  EXPECT_EQ(imbalance_warning({10, 10, 10}, names), "");
  EXPECT_NE(imbalance_warning({7, 0, 3}, names).find("none at all"), std::string::npos);
}

}  // namespace
}  // namespace tlkit::data
