// DataLoader: order and augmentation independent of threads, bounded prefetch, errors, stopping.

#include <tlkit/core/error.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/random.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

using namespace tlkit::data;

namespace {

// Image i is a 2 x 3 x 1 uint8 image filled with i % 256, label i % 4; optionally throws at one
// index and counts how many samples were fetched.
class CountingDataset : public Dataset {
 public:
  explicit CountingDataset(size_t n, size_t throw_at = SIZE_MAX) : n_(n), throw_at_(throw_at) {}
  size_t size() const override { return n_; }
  Sample get(size_t index) const override {
    ++fetched;
    if (index == throw_at_) throw tlkit::Error("simulated decode failure");
    return Sample{torch::full({2, 3, 1}, static_cast<int64_t>(index % 256), torch::kUInt8),
                  static_cast<int64_t>(index % 4), "item" + std::to_string(index)};
  }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::vector<int64_t> labels() const override {
    std::vector<int64_t> out;
    for (size_t i = 0; i < n_; ++i) out.push_back(static_cast<int64_t>(i % 4));
    return out;
  }
  std::string describe() const override { return "counting dataset"; }
  mutable std::atomic<size_t> fetched{0};

 private:
  size_t n_, throw_at_;
  std::vector<std::string> classes_{"a", "b", "c", "d"};
};

// Adds a random offset drawn from the sample's generator: shows which stream each sample got.
class RandomOffset : public Transform {
 public:
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override {
    return image.to(torch::kFloat) + static_cast<float>(uniform01(rng));
  }
};

struct Epoch {
  std::vector<std::string> sources;
  std::vector<torch::Tensor> images;
};

Epoch run_epoch(DataLoader& loader, size_t e) {
  Epoch out;
  loader.epoch(e);
  while (auto batch = loader.next()) {
    out.sources.insert(out.sources.end(), batch->sources.begin(), batch->sources.end());
    out.images.push_back(batch->images);
  }
  return out;
}

LoaderOptions options_with(size_t workers, size_t batch_size = 8) {
  LoaderOptions options;
  options.workers = workers;
  options.batch_size = batch_size;
  options.seed = 1234;
  return options;
}

}  // namespace

TEST(DataLoader, OrderAndAugmentationDoNotDependOnThreads) {
  auto dataset = std::make_shared<CountingDataset>(103);
  auto transform = std::make_shared<RandomOffset>();
  DataLoader reference(dataset, transform, options_with(0));
  const auto expected = run_epoch(reference, 2);
  for (size_t workers : {1, 2, 5}) {
    DataLoader loader(dataset, transform, options_with(workers));
    const auto got = run_epoch(loader, 2);
    EXPECT_EQ(got.sources, expected.sources) << workers << " workers";
    ASSERT_EQ(got.images.size(), expected.images.size());
    for (size_t b = 0; b < got.images.size(); ++b) {
      EXPECT_TRUE(torch::equal(got.images[b], expected.images[b]))
          << "batch " << b << ", " << workers << " workers";
    }
  }
}

TEST(DataLoader, EachEpochVisitsEverySampleOnceInItsOwnOrder) {
  auto dataset = std::make_shared<CountingDataset>(50);
  DataLoader loader(dataset, nullptr, options_with(2, 7));
  EXPECT_EQ(loader.num_batches(), 8u);
  const auto first = run_epoch(loader, 0), second = run_epoch(loader, 1),
             again = run_epoch(loader, 0);
  EXPECT_EQ(std::set<std::string>(first.sources.begin(), first.sources.end()).size(), 50u);
  EXPECT_EQ(std::set<std::string>(second.sources.begin(), second.sources.end()).size(), 50u);
  EXPECT_NE(first.sources, second.sources);
  EXPECT_EQ(first.sources, again.sources);
  EXPECT_EQ(first.images.back().size(0), 50 - 7 * 7);
  // The order is the documented permutation of (seed, epoch).
  const auto order = permutation(50, derive_seed(1234, 1));
  for (size_t i = 0; i < order.size(); ++i)
    EXPECT_EQ(second.sources[i], "item" + std::to_string(order[i]));
}

TEST(DataLoader, BatchesHoldImagesLabelsAndIndices) {
  auto dataset = std::make_shared<CountingDataset>(10);
  LoaderOptions options = options_with(2, 4);
  options.shuffle = false;
  DataLoader loader(dataset, nullptr, options);
  auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->images.sizes(), (torch::IntArrayRef{4, 2, 3, 1}));
  EXPECT_EQ(batch->labels.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(batch->labels, torch::tensor({0, 1, 2, 3}, torch::kLong)));
  EXPECT_EQ(batch->indices, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(batch->images[3][1][2][0].item<int>(), 3);
}

TEST(DataLoader, DropLastAndLimit) {
  auto dataset = std::make_shared<CountingDataset>(30);
  LoaderOptions options = options_with(2, 8);
  options.drop_last = true;
  DataLoader dropping(dataset, nullptr, options);
  EXPECT_EQ(dropping.num_batches(), 3u);
  EXPECT_EQ(run_epoch(dropping, 0).sources.size(), 24u);
  options.drop_last = false;
  options.limit = 10;
  DataLoader limited(dataset, nullptr, options);
  const auto epoch = run_epoch(limited, 3);
  EXPECT_EQ(epoch.sources.size(), 10u);
  EXPECT_EQ(limited.num_batches(), 2u);
  options.limit = 0;
  options.drop_last = true;
  options.batch_size = 64;
  EXPECT_THROW(DataLoader(dataset, nullptr, options), tlkit::Error);
}

TEST(DataLoader, PrefetchIsBounded) {
  auto dataset = std::make_shared<CountingDataset>(400);
  LoaderOptions options = options_with(3, 10);
  options.prefetch = 2;
  DataLoader loader(dataset, nullptr, options);
  auto first = loader.next();
  ASSERT_TRUE(first.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // One batch delivered, at most two more claimed ahead of the consumer.
  EXPECT_LE(dataset->fetched.load(), 30u);
  EXPECT_GE(dataset->fetched.load(), 20u);
}

TEST(DataLoader, WorkerErrorsReachTheConsumerWithContext) {
  auto dataset = std::make_shared<CountingDataset>(40, 13);
  LoaderOptions options = options_with(2, 8);
  options.shuffle = false;
  {
    // By default the failing sample is left out of its batch (and the others kept).
    DataLoader skipping(dataset, nullptr, options);
    EXPECT_EQ(skipping.next()->labels.size(0), 8);
    const auto batch = skipping.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_EQ(batch->labels.size(0), 7);
    EXPECT_EQ(std::count(batch->indices.begin(), batch->indices.end(), 13u), 0);
    EXPECT_EQ(skipping.skipped_unreadable(), 1u);
  }
  options.skip_unreadable = false;
  DataLoader loader(dataset, nullptr, options);
  EXPECT_TRUE(loader.next().has_value());
  try {
    loader.next();
    FAIL() << "expected the failure of sample 13 in batch 1";
  } catch (const tlkit::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("batch 1 of epoch 0, sample 13"), std::string::npos) << message;
    EXPECT_NE(message.find("simulated decode failure"), std::string::npos) << message;
  }
  EXPECT_TRUE(loader.next().has_value());  // the loader goes on with the next batch
}

TEST(DataLoader, MismatchedShapesAreAClearError) {
  class Ragged : public CountingDataset {
   public:
    Ragged() : CountingDataset(6) {}
    Sample get(size_t index) const override {
      auto sample = CountingDataset::get(index);
      if (index == 4) sample.image = torch::zeros({5, 5, 1}, torch::kUInt8);
      return sample;
    }
  };
  LoaderOptions options = options_with(1, 6);
  options.shuffle = false;
  DataLoader loader(std::make_shared<Ragged>(), nullptr, options);
  try {
    loader.next();
    FAIL() << "expected a shape error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("one size"), std::string::npos) << e.what();
  }
}

TEST(DataLoader, StopsCleanlyMidEpochAndRestartsEpochs) {
  auto dataset = std::make_shared<CountingDataset>(1000);
  {
    DataLoader loader(dataset, nullptr, options_with(4, 16));
    EXPECT_TRUE(loader.next().has_value());
    loader.epoch(5);  // abandons epoch 0 in flight
    const auto restarted = loader.next();
    ASSERT_TRUE(restarted.has_value());
    EXPECT_EQ(restarted->indices.front(), loader.order(5).front());
  }  // destructor joins the workers with work pending
  SUCCEED();
}

TEST(DataLoader, RangeForRunsOneEpochAtATime) {
  auto dataset = std::make_shared<CountingDataset>(20);
  DataLoader loader(dataset, nullptr, options_with(2, 6));
  size_t batches = 0, samples = 0;
  for (auto& batch : loader) {
    ++batches;
    samples += static_cast<size_t>(batch.images.size(0));
  }
  EXPECT_EQ(batches, 4u);
  EXPECT_EQ(samples, 20u);
  EXPECT_EQ(loader.current_epoch(), 0u);
  for (auto& batch : loader) (void)batch;
  EXPECT_EQ(loader.current_epoch(), 1u);
}

TEST(DataLoader, BatchesTheConsumerKeepsAreNeverReused) {
  auto dataset = std::make_shared<CountingDataset>(120);
  LoaderOptions options = options_with(2, 4);
  options.prefetch = 1;
  DataLoader loader(dataset, nullptr, options);
  std::vector<ImageBatch> kept;
  std::vector<torch::Tensor> views;  // only a view of every other batch survives
  for (int e = 0; e < 2; ++e) {
    loader.epoch(static_cast<size_t>(e));
    size_t b = 0;
    while (auto batch = loader.next()) {
      if (b++ % 2 == 0)
        kept.push_back(*batch);
      else
        views.push_back(batch->images[0]);
    }
  }
  auto holds = [](const torch::Tensor& image, size_t index) {
    return torch::equal(image,
                        torch::full({2, 3, 1}, static_cast<int64_t>(index % 256), torch::kUInt8));
  };
  for (const auto& batch : kept) {
    for (size_t row = 0; row < batch.indices.size(); ++row) {
      EXPECT_TRUE(holds(batch.images[static_cast<int64_t>(row)], batch.indices[row]))
          << "index " << batch.indices[row];
    }
  }
  const auto first_epoch = loader.order(0);
  for (size_t v = 0; v < views.size() / 2; ++v) {
    EXPECT_TRUE(holds(views[v], first_epoch[(2 * v + 1) * 4])) << "view " << v;
  }
}

TEST(DataLoader, ShardsFollowDistributedSamplersRule) {
  // 2 shards x batch 3 visit, batch by batch, what one loader x batch 6 visits.
  auto dataset = std::make_shared<CountingDataset>(23);
  auto whole_options = options_with(0, 6);
  DataLoader whole(dataset, nullptr, whole_options);
  const auto all = whole.order(3);
  std::vector<std::vector<size_t>> parts;
  for (size_t shard = 0; shard < 2; ++shard) {
    auto options = options_with(0, 3);
    options.shards = 2;
    options.shard = shard;
    DataLoader part(dataset, nullptr, options);
    EXPECT_EQ(part.num_samples(), 12u);  // padded: 24 = 23 + the first index again
    parts.push_back(part.order(3));
  }
  for (size_t k = 0; k < 4; ++k) {
    std::multiset<size_t> joined, expected;
    for (size_t j = 3 * k; j < std::min<size_t>(3 * k + 3, 12); ++j) {
      joined.insert(parts[0][j]);
      joined.insert(parts[1][j]);
    }
    for (size_t j = 6 * k; j < 6 * k + 6; ++j) expected.insert(all[j % all.size()]);
    EXPECT_EQ(joined, expected) << "batch " << k;
  }
  // Unpadded (evaluation): every index exactly once over the shards.
  std::multiset<size_t> seen;
  for (size_t shard = 0; shard < 3; ++shard) {
    auto options = options_with(0, 4);
    options.shuffle = false;
    options.shards = 3;
    options.shard = shard;
    options.pad_shards = false;
    DataLoader part(dataset, nullptr, options);
    for (const auto i : part.order(0)) seen.insert(i);
    EXPECT_EQ(part.num_samples(), shard < 2 ? 8u : 7u);
  }
  EXPECT_EQ(seen.size(), 23u);
  EXPECT_EQ(std::set<size_t>(seen.begin(), seen.end()).size(), 23u);
  EXPECT_THROW(shard_order({1, 2, 3}, 2, 2, true), tlkit::Error);
}
