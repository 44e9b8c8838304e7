// TrivialAugmentWide / RandAugment ops and RandomErasing against torchvision 0.14
// (scripts/gen_augment_reference.py), and their draws: per (seed, epoch, index), the same for any
// number of loader threads or data-parallel shards.

#include <tlkit/core/error.h>
#include <tlkit/data/auto_augment.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/random.h>
#include <tlkit/data/random_erasing.h>
#include <tlkit/data/transforms.h>

#include <iostream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/data_test_util.h"

using namespace tlkit::data;

namespace {

const std::map<std::string, torch::Tensor>& records() {
  static const auto all =
      tlkit::test::read_reference_records(tlkit::test::test_data_dir() / "augment_reference.txt");
  return all;
}

torch::Tensor record(const std::string& name) {
  const auto it = records().find(name);
  return it == records().end() ? torch::Tensor() : it->second;
}

constexpr int kImages = 4;

// Image i: 13 x 11 x 3 noise from seed i, label i % 2.
class NoiseDataset : public Dataset {
 public:
  explicit NoiseDataset(size_t n) : n_(n) {}
  size_t size() const override { return n_; }
  Sample get(size_t index) const override {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(index);
    return Sample{torch::randint(0, 256, {13, 11, 3}, generator, torch::kUInt8),
                  static_cast<int64_t>(index % 2), "item" + std::to_string(index)};
  }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::string describe() const override { return "noise dataset"; }

 private:
  size_t n_;
  std::vector<std::string> classes_{"a", "b"};
};

std::shared_ptr<Transform> augmenting_transform(const std::string& policy) {
  Augmentation augmentation;
  augmentation.auto_augment = policy;
  augmentation.erasing = 0.5;
  augmentation.erasing_random = true;
  return train_transform(9, Normalization{}, augmentation);
}

// source -> image of one epoch.
std::map<std::string, torch::Tensor> epoch_images(const std::string& policy, size_t workers,
                                                  size_t shards = 1, size_t shard = 0) {
  LoaderOptions options;
  options.batch_size = 4;
  options.seed = 77;
  options.workers = workers;
  options.shards = shards;
  options.shard = shard;
  options.pad_shards = false;
  DataLoader loader(std::make_shared<NoiseDataset>(30), augmenting_transform(policy), options);
  loader.epoch(1);
  std::map<std::string, torch::Tensor> out;
  while (auto batch = loader.next())
    for (size_t i = 0; i < batch->sources.size(); ++i)
      out[batch->sources[i]] = batch->images[static_cast<int64_t>(i)];
  return out;
}

}  // namespace

// Every op at several magnitudes (both signs, from both policies' tables) on noise, a smooth
// gradient with a flat channel, a grey image and a low-contrast one: the same ATen operations as
// torchvision's tensor path, so equal pixel for pixel (the bar is 1 of 255; the measured maximum
// difference per op is printed).
TEST(AutoAugmentOps, MatchTorchvisionPixelForPixel) {
  ASSERT_TRUE(record("in:0").defined())
      << "augment_reference.txt missing from " << tlkit::test::test_data_dir()
      << " (scripts/gen_augment_reference.py)";
  for (int o = 0; o < kAugmentOpCount; ++o) {
    const auto op = static_cast<AugmentOp>(o);
    const std::string name = augment_op_name(op);
    int compared = 0;
    std::int64_t max_difference = 0, differing = 0;
    for (int j = 0;; ++j) {
      const auto magnitude = record("mag:" + name + ":" + std::to_string(j));
      if (!magnitude.defined()) break;
      for (int k = 0; k < kImages; ++k) {
        const auto input = record("in:" + std::to_string(k));
        const auto expected =
            record("out:" + name + ":" + std::to_string(j) + ":" + std::to_string(k));
        ASSERT_TRUE(input.defined() && expected.defined()) << name << " " << j << " " << k;
        const auto got = apply_augment_op(input, op, magnitude.item<double>());
        ASSERT_EQ(got.sizes(), expected.sizes()) << name;
        ASSERT_EQ(got.scalar_type(), torch::kUInt8) << name;
        const auto difference = (got.to(torch::kInt) - expected.to(torch::kInt)).abs();
        const auto largest = difference.max().item<std::int64_t>();
        max_difference = std::max(max_difference, largest);
        differing += difference.gt(0).sum().item<std::int64_t>();
        EXPECT_LE(largest, 1) << name << " at magnitude " << magnitude.item<double>()
                              << " on image " << k;
        ++compared;
      }
    }
    EXPECT_GT(compared, 0) << name;
    // The same operations in the same order: exact.
    EXPECT_EQ(max_difference, 0) << name << ": " << differing << " pixels differ";
    std::cout << "[ torchvision ] " << name << ": " << compared
              << " images compared, max |difference| " << max_difference << " of 255\n";
  }
}

TEST(AutoAugmentOps, MagnitudeTablesAreTorchvisions) {
  for (int o = 0; o < kAugmentOpCount; ++o) {
    const auto op = static_cast<AugmentOp>(o);
    const std::string name = augment_op_name(op);
    EXPECT_EQ(augment_op_from_name(name), op);
    const std::pair<std::string, OpMagnitudes> tables[] = {
        {"rand", rand_augment_magnitudes(op, kMagnitudeBins, 37, 29)},
        {"wide", trivial_augment_magnitudes(op, kMagnitudeBins)}};
    for (const auto& [policy, table] : tables) {
      const auto expected = record("space:" + policy + ":" + name);
      const auto is_signed = record("signed:" + policy + ":" + name);
      ASSERT_TRUE(is_signed.defined()) << policy << " " << name;
      EXPECT_EQ(table.is_signed, is_signed[0].item<std::int64_t>() == 1) << policy << " " << name;
      if (!expected.defined()) {
        EXPECT_TRUE(table.values.empty()) << policy << " " << name;
        continue;
      }
      ASSERT_EQ(static_cast<int64_t>(table.values.size()), expected.numel())
          << policy << " " << name;
      for (size_t b = 0; b < table.values.size(); ++b)
        EXPECT_EQ(table.values[b], expected[static_cast<int64_t>(b)].item<double>())
            << policy << " " << name << " bin " << b;
    }
  }
  EXPECT_THROW(augment_op_from_name("Invert"), tlkit::Error);
}

TEST(AutoAugmentSpec, ParsesThePoliciesAndRefusesTheRest) {
  EXPECT_FALSE(parse_auto_augment("none").enabled());
  EXPECT_EQ(parse_auto_augment("trivial").text(), "trivial");
  const auto rand = parse_auto_augment("rand:3,15");
  EXPECT_EQ(rand.policy, "rand");
  EXPECT_EQ(rand.num_ops, 3);
  EXPECT_EQ(rand.magnitude, 15);
  EXPECT_EQ(rand.text(), "rand:3,15");
  EXPECT_EQ(parse_auto_augment("rand: 2, 9").text(), "rand:2,9");
  for (const auto* bad : {"rand:3", "foo", "rand", "rand:", "rand:0,9", "rand:2,31", "rand:a,b",
                          "rand:2,-1", "rand:2,9,1", "Trivial", ""}) {
    EXPECT_THROW(parse_auto_augment(bad), tlkit::Error) << bad;
  }
  try {
    parse_auto_augment("rand:3");
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rand:N,M"), std::string::npos) << e.what();
  }
}

// RandAugment(1, M) applies one op at bin M with either sign: its output is one of those images.
TEST(AutoAugmentPolicies, RandAugmentAppliesOpsAtItsMagnitude) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto image = torch::randint(0, 256, {15, 12, 3}, generator, torch::kUInt8);
  const RandAugment policy(1, 20);
  std::set<int> seen;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    const auto out = policy(image, rng);
    bool matched = false;
    for (int o = 0; o < kAugmentOpCount && !matched; ++o) {
      const auto op = static_cast<AugmentOp>(o);
      const auto table = rand_augment_magnitudes(op, kMagnitudeBins, 15, 12);
      const double m = table.values.empty() ? 0.0 : table.values[20];
      for (const double sign : {1.0, -1.0}) {
        if (torch::equal(out, apply_augment_op(image, op, sign * m))) {
          matched = true;
          seen.insert(o);
          break;
        }
      }
    }
    EXPECT_TRUE(matched) << "seed " << seed;
  }
  EXPECT_GE(seen.size(), 10u);  // the op is drawn from all 14 (some coincide on this image)
  // Deterministic in the generator; two ops per image change it more often than not.
  std::mt19937_64 a(9), b(9);
  EXPECT_TRUE(torch::equal(RandAugment(2, 9)(image, a), RandAugment(2, 9)(image, b)));
  std::mt19937_64 c(9), d(9);
  EXPECT_TRUE(torch::equal(TrivialAugmentWide()(image, c), TrivialAugmentWide()(image, d)));
}

TEST(AutoAugmentPolicies, TakeOnlyUint8Images) {
  std::mt19937_64 rng(1);
  EXPECT_THROW(TrivialAugmentWide()(torch::zeros({3, 8, 8}), rng), tlkit::Error);
  EXPECT_THROW(RandAugment(2, 9)(torch::zeros({8, 8, 4}, torch::kUInt8), rng), tlkit::Error);
  EXPECT_THROW(RandAugment(2, 31), tlkit::Error);
}

// The box from fixed uniform draws equals torchvision's get_params restated on the same draws
// (the scale, the log-ratio sampling, the h < H and w < W test, ten tries, the fallback).
TEST(RandomErasing, BoxMatchesTorchvisionSamplingOnFixedDraws) {
  int cases = 0, fallbacks = 0;
  for (int n = 0;; ++n) {
    const auto input = record("erase_case:" + std::to_string(n));
    if (!input.defined()) break;
    const auto expected = record("erase_box:" + std::to_string(n));
    ASSERT_TRUE(expected.defined());
    const auto v = input.contiguous();
    const double* p = v.data_ptr<double>();
    std::vector<double> draws(p + 6, p + v.numel());
    size_t next = 0;
    const auto box = random_erasing_box(static_cast<int>(p[0]), static_cast<int>(p[1]),
                                        {p[2], p[3]}, {p[4], p[5]}, [&] {
                                          EXPECT_LT(next, draws.size());
                                          return draws[next++ % draws.size()];
                                        });
    EXPECT_EQ(box.found, expected[0].item<std::int64_t>() == 1) << "case " << n;
    EXPECT_EQ(box.top, expected[1].item<std::int64_t>()) << "case " << n;
    EXPECT_EQ(box.left, expected[2].item<std::int64_t>()) << "case " << n;
    EXPECT_EQ(box.height, expected[3].item<std::int64_t>()) << "case " << n;
    EXPECT_EQ(box.width, expected[4].item<std::int64_t>()) << "case " << n;
    fallbacks += box.found ? 0 : 1;
    ++cases;
  }
  EXPECT_GE(cases, 40);
  EXPECT_GE(fallbacks, 8);
}

TEST(RandomErasing, ErasesOneBoxWithZeroOrNormalDraws) {
  const auto image = torch::rand({3, 40, 30}) + 5;  // every value > 5
  for (const bool random : {false, true}) {
    const RandomErasing erasing(1.0, random);
    int erased = 0;
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      std::mt19937_64 rng(seed), replay(seed);
      const auto out = erasing(image, rng);
      // The box of the same draws (after the probability draw).
      uniform01(replay);
      const auto box =
          random_erasing_box(40, 30, {0.02, 0.33}, {0.3, 3.3}, [&] { return uniform01(replay); });
      const auto changed = out.ne(image).any(0);
      if (!box.found) {
        EXPECT_TRUE(torch::equal(out, image));
        continue;
      }
      ++erased;
      auto expected_mask = torch::zeros({40, 30}, torch::kBool);
      expected_mask.slice(0, box.top, box.top + box.height)
          .slice(1, box.left, box.left + box.width)
          .fill_(true);
      EXPECT_TRUE(torch::equal(changed, expected_mask)) << "seed " << seed;
      const auto inside =
          out.slice(1, box.top, box.top + box.height).slice(2, box.left, box.left + box.width);
      if (!random) {
        EXPECT_EQ(inside.abs().max().item<float>(), 0.0f);
      } else {
        EXPECT_LT(inside.abs().max().item<float>(), 6.0f);  // N(0, 1) draws
      }
    }
    EXPECT_GE(erased, 15) << random;
  }
  // Many random boxes: the values are standard normal.
  std::vector<torch::Tensor> values;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    const auto out = RandomErasing(1.0, true)(torch::full({3, 64, 64}, 100.0f), rng);
    values.push_back(out.masked_select(out.ne(100.0f)));
  }
  const auto all = torch::cat(values);
  ASSERT_GT(all.numel(), 10000);
  EXPECT_NEAR(all.mean().item<double>(), 0.0, 0.02);
  EXPECT_NEAR(all.std().item<double>(), 1.0, 0.02);
  std::mt19937_64 rng(1);
  EXPECT_TRUE(torch::equal(RandomErasing(0.0)(image, rng), image));
  EXPECT_THROW(RandomErasing(1.5), tlkit::Error);
  EXPECT_THROW(RandomErasing(0.5)(torch::zeros({8, 8, 3}, torch::kUInt8), rng), tlkit::Error);
}

TEST(TrainTransform, PutsTheAugmentationInTorchvisionsOrder) {
  Augmentation augmentation;
  augmentation.auto_augment = "rand:2,9";
  augmentation.erasing = 0.25;
  const auto text = train_transform(9, Normalization{}, augmentation)->describe();
  const auto crop = text.find("RandomResizedCrop"), flip = text.find("HorizontalFlip"),
             policy = text.find("RandAugment(num_ops=2, magnitude=9"),
             normalise = text.find("ToNormalizedFloat"),
             erasing = text.find("RandomErasing(p=0.25");
  ASSERT_NE(policy, std::string::npos) << text;
  ASSERT_NE(erasing, std::string::npos) << text;
  EXPECT_LT(crop, flip);
  EXPECT_LT(flip, policy);
  EXPECT_LT(policy, normalise);
  EXPECT_LT(normalise, erasing);
  augmentation.auto_augment = "trivial";
  augmentation.erasing = 0;
  const auto trivial = train_transform(9, Normalization{}, augmentation)->describe();
  EXPECT_NE(trivial.find("TrivialAugmentWide"), std::string::npos) << trivial;
  EXPECT_EQ(trivial.find("RandomErasing"), std::string::npos) << trivial;
  EXPECT_EQ(train_transform(9)->describe().find("Augment"), std::string::npos);
  augmentation.auto_augment = "rand:3";
  EXPECT_THROW(train_transform(9, Normalization{}, augmentation), tlkit::Error);
}

// Each sample's augmentation is drawn from (seed, epoch, index): the same images with 0, 1 or 3
// loader threads, and when two data-parallel shards each load their half.
TEST(TrainTransform, AugmentationDoesNotDependOnWorkersOrShards) {
  for (const std::string policy : {"trivial", "rand:2,9"}) {
    const auto expected = epoch_images(policy, 0);
    ASSERT_EQ(expected.size(), 30u);
    for (const size_t workers : {1, 3}) {
      const auto got = epoch_images(policy, workers);
      ASSERT_EQ(got.size(), expected.size());
      for (const auto& [source, image] : expected)
        EXPECT_TRUE(torch::equal(got.at(source), image))
            << policy << " " << source << ", " << workers << " workers";
    }
    auto sharded = epoch_images(policy, 2, 2, 0);
    const auto other = epoch_images(policy, 1, 2, 1);
    sharded.insert(other.begin(), other.end());
    ASSERT_EQ(sharded.size(), expected.size());
    for (const auto& [source, image] : expected)
      EXPECT_TRUE(torch::equal(sharded.at(source), image)) << policy << " " << source;
    // The augmentation does something: without it the same epoch differs.
    LoaderOptions options;
    options.seed = 77;
    options.batch_size = 4;
    DataLoader plain(std::make_shared<NoiseDataset>(30), train_transform(9, Normalization{}),
                     options);
    plain.epoch(1);
    int different = 0;
    while (auto batch = plain.next())
      for (size_t i = 0; i < batch->sources.size(); ++i)
        different +=
            torch::equal(expected.at(batch->sources[i]), batch->images[static_cast<int64_t>(i)])
                ? 0
                : 1;
    EXPECT_GT(different, 15) << policy;
  }
}
