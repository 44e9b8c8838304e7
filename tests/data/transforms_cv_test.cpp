// Transforms against torchvision 0.14 (scripts/gen_data_reference.py) and ATen's own resamplers.

#include <tlkit/core/error.h>
#include <tlkit/data/random.h>
#include <tlkit/data/transforms.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/data_test_util.h"

using namespace tlkit::data;
using tlkit::test::reference;

namespace {

std::mt19937_64 rng_for_test(std::uint64_t seed = 1) { return std::mt19937_64(seed); }

torch::Tensor random_image(int64_t height, int64_t width, int64_t channels, int64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {height, width, channels}, torch::kUInt8);
}

}  // namespace

TEST(DataTransforms, ResizeShorterSideMatchesTorchvisionSizes) {
  const auto rows = reference("resize_sizes");
  ASSERT_TRUE(rows.defined());
  auto rng = rng_for_test();
  for (int64_t r = 0; r < rows.size(0); ++r) {
    const auto row = rows[r];
    const auto h = row[0].item<int64_t>(), w = row[1].item<int64_t>();
    const auto size = static_cast<int>(row[2].item<int64_t>());
    const auto out = Resize(size)(torch::zeros({h, w, 3}, torch::kUInt8), rng);
    EXPECT_EQ(out.size(0), row[3].item<int64_t>()) << h << "x" << w << " -> " << size;
    EXPECT_EQ(out.size(1), row[4].item<int64_t>()) << h << "x" << w << " -> " << size;
    EXPECT_EQ(out.size(2), 3);
  }
}

TEST(DataTransforms, CenterCropMatchesTorchvisionIncludingPadding) {
  auto rng = rng_for_test();
  for (int n = 0; n < 6; ++n) {
    const auto input = reference("crop_in_" + std::to_string(n));
    const auto expected = reference("crop_out_" + std::to_string(n));
    const auto size = reference("crop_size_" + std::to_string(n));
    ASSERT_TRUE(input.defined() && expected.defined() && size.defined());
    CenterCrop crop(static_cast<int>(size[0].item<int64_t>()),
                    static_cast<int>(size[1].item<int64_t>()));
    const auto out = crop(input, rng);
    ASSERT_EQ(out.sizes(), expected.sizes()) << "case " << n;
    EXPECT_TRUE(torch::equal(out, expected)) << "case " << n;
  }
}

TEST(DataTransforms, ToNormalizedFloatMatchesToTensorNormalize) {
  auto rng = rng_for_test();
  for (const std::string kind : {"rgb", "grey"}) {
    const auto input = reference("norm_in_" + kind);
    const auto expected = reference("norm_out_" + kind);
    ASSERT_TRUE(input.defined() && expected.defined());
    const auto fused = ToNormalizedFloat(imagenet())(input, rng);
    ASSERT_EQ(fused.sizes(), expected.sizes()) << kind;
    EXPECT_TRUE(torch::allclose(fused, expected, 1e-6, 1e-6)) << kind;
    // The step-by-step pipeline gives the same numbers.
    Compose steps({std::make_shared<GreyToRgb>(), std::make_shared<ToFloat>(),
                   std::make_shared<Normalize>()});
    EXPECT_TRUE(torch::allclose(steps(input, rng), expected, 1e-6, 1e-6)) << kind;
  }
}

TEST(DataTransforms, ToNormalizedFloatKeepsGreyWhenAsked) {
  auto rng = rng_for_test();
  const auto grey = random_image(4, 5, 1, 3);
  const auto out = ToNormalizedFloat(Normalization{}, Channels::kKeep)(grey, rng);
  ASSERT_EQ(out.sizes(), (torch::IntArrayRef{1, 4, 5}));
  EXPECT_TRUE(torch::allclose(out[0], grey.squeeze(2).to(torch::kFloat) / 255.0));
}

// A model that takes grey images gets RGB images as PIL's convert('L') makes them: luma with
// 0.299/0.587/0.114 rounded to uint8 (values computed with PIL: 255,0,0 -> 76; 0,255,0 -> 150;
// 0,0,255 -> 29; 10,200,30 -> 124; 128,128,128 -> 128), then normalised with the first mean/std.
TEST(DataTransforms, ToNormalizedFloatMakesGreyAsPilDoes) {
  auto rng = rng_for_test();
  const auto rgb =
      torch::tensor({255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30, 128, 128, 128}, torch::kByte)
          .view({1, 5, 3});
  const auto out =
      ToNormalizedFloat(Normalization{{0.5, 0.1, 0.1}, {0.25, 1, 1}}, Channels::kGrey)(rgb, rng);
  ASSERT_EQ(out.sizes(), (torch::IntArrayRef{1, 1, 5}));
  const auto expected = (torch::tensor({76, 150, 29, 124, 128}, torch::kFloat) / 255 - 0.5) / 0.25;
  EXPECT_TRUE(torch::allclose(out.flatten(), expected, 1e-6, 1e-6)) << out;
  // Grey in, grey out: unchanged.
  const auto grey = random_image(4, 5, 1, 3);
  EXPECT_TRUE(torch::allclose(ToNormalizedFloat(Normalization{}, Channels::kGrey)(grey, rng)[0],
                              grey.squeeze(2).to(torch::kFloat) / 255.0));
}

TEST(DataTransforms, RandomResizedCropFallbackMatchesTorchvision) {
  const auto rows = reference("rrc_fallback");
  ASSERT_TRUE(rows.defined());
  for (int64_t r = 0; r < rows.size(0); ++r) {
    const auto v = rows[r];
    auto at = [&](int k) { return v[k].item<double>(); };
    RandomResizedCrop crop(8, {at(2), at(3)}, {at(4), at(5)});
    auto rng = rng_for_test(static_cast<std::uint64_t>(r));
    const auto box = crop.sample_box(static_cast<int>(at(0)), static_cast<int>(at(1)), rng);
    EXPECT_EQ(box.top, static_cast<int>(at(6))) << "row " << r;
    EXPECT_EQ(box.left, static_cast<int>(at(7))) << "row " << r;
    EXPECT_EQ(box.height, static_cast<int>(at(8))) << "row " << r;
    EXPECT_EQ(box.width, static_cast<int>(at(9))) << "row " << r;
  }
}

TEST(DataTransforms, RandomResizedCropBoxesFollowTorchvisionsDistribution) {
  const auto stats = reference("rrc_stats");  // mean area, mean log ratio, whole-image fraction
  ASSERT_TRUE(stats.defined());
  RandomResizedCrop crop(224);
  auto rng = rng_for_test(42);
  const int draws = 20000;
  double mean_area = 0, mean_log_ratio = 0, whole = 0;
  for (int i = 0; i < draws; ++i) {
    const auto box = crop.sample_box(375, 500, rng);
    ASSERT_GE(box.top, 0);
    ASSERT_GE(box.left, 0);
    ASSERT_LE(box.top + box.height, 375);
    ASSERT_LE(box.left + box.width, 500);
    const double area = static_cast<double>(box.height) * box.width / (375.0 * 500.0);
    // Whole pixels widen the ranges slightly beyond scale (0.08, 1) and ratio (3/4, 4/3).
    ASSERT_GE(area, 0.075);
    ASSERT_LE(std::abs(std::log(static_cast<double>(box.width) / box.height)),
              std::log(4.0 / 3.0) + 0.05);
    mean_area += area / draws;
    mean_log_ratio += std::log(static_cast<double>(box.width) / box.height) / draws;
    whole += (box.height == 375 && box.width == 500) ? 1.0 / draws : 0.0;
  }
  // Both estimates come from 20000 draws: standard errors ~0.002 (area) and ~0.001 (log ratio).
  EXPECT_NEAR(mean_area, stats[0].item<double>(), 0.01);
  EXPECT_NEAR(mean_log_ratio, stats[1].item<double>(), 0.01);
  EXPECT_NEAR(whole, stats[2].item<double>(), 0.01);
}

TEST(DataTransforms, RandomTransformsAreReproducibleFromTheGenerator) {
  const auto image = random_image(60, 80, 3, 5);
  const auto transform = train_transform(32);
  std::mt19937_64 a(derive_seed(7, 0, 3)), b(derive_seed(7, 0, 3)), c(derive_seed(7, 1, 3));
  const auto first = (*transform)(image, a);
  EXPECT_TRUE(torch::equal(first, (*transform)(image, b)));
  EXPECT_FALSE(torch::equal(first, (*transform)(image, c)));
  EXPECT_EQ(first.sizes(), (torch::IntArrayRef{3, 32, 32}));
}

TEST(DataTransforms, BilinearResizeMatchesTorchvisionWithinOneLevel) {
  const auto input = reference("bilinear_in");
  const auto expected = reference("bilinear_out");
  ASSERT_TRUE(input.defined() && expected.defined());
  auto rng = rng_for_test();
  const auto out = Resize(11, Interpolation::kBilinear)(input, rng);
  ASSERT_EQ(out.sizes(), expected.sizes());
  // OpenCV interpolates uint8 in fixed point, torchvision in float: at most one level apart.
  EXPECT_LE((out.to(torch::kInt) - expected.to(torch::kInt)).abs().max().item<int>(), 1);
}

TEST(DataTransforms, AreaResizeByTwoAveragesBlocks) {
  const auto image = random_image(40, 60, 3, 11);
  auto rng = rng_for_test();
  const auto out = Resize(20)(image, rng);  // kAuto shrinks with area averaging
  ASSERT_EQ(out.sizes(), (torch::IntArrayRef{20, 30, 3}));
  const auto planes = image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
  const auto pooled = torch::avg_pool2d(planes, 2).squeeze(0).permute({1, 2, 0});
  EXPECT_LE((out.to(torch::kFloat) - pooled).abs().max().item<float>(), 0.51f);
}

TEST(DataTransforms, HorizontalFlipMirrorsWithItsProbability) {
  const auto image = random_image(3, 4, 3, 12);
  auto rng = rng_for_test();
  EXPECT_TRUE(torch::equal(HorizontalFlip(1.0)(image, rng), image.flip({1})));
  const auto grey = random_image(5, 7, 1, 14), pairs = random_image(5, 7, 2, 15);
  EXPECT_TRUE(torch::equal(HorizontalFlip(1.0)(grey, rng), grey.flip({1})));
  EXPECT_TRUE(torch::equal(HorizontalFlip(1.0)(pairs, rng), pairs.flip({1})));
  const auto planes = torch::rand({3, 4, 5});
  EXPECT_TRUE(torch::equal(HorizontalFlip(1.0)(planes, rng), planes.flip({2})));
  EXPECT_TRUE(torch::equal(HorizontalFlip(0.0)(image, rng), image));
  int flipped = 0;
  for (int i = 0; i < 1000; ++i)
    flipped += torch::equal(HorizontalFlip(0.3)(image, rng), image) ? 0 : 1;
  EXPECT_NEAR(flipped, 300, 60);
}

TEST(DataTransforms, EvalTransformGivesNormalisedRgbOfTheCropSize) {
  auto rng = rng_for_test();
  const auto grey = random_image(300, 400, 1, 13);
  const auto transform = eval_transform(256, 224);
  const auto out = (*transform)(grey, rng);
  ASSERT_EQ(out.sizes(), (torch::IntArrayRef{3, 224, 224}));
  // Grey became RGB: the channels differ only by their normalisation.
  const auto n = imagenet();
  const auto r = out[0] * n.std[0] + n.mean[0], g = out[1] * n.std[1] + n.mean[1];
  EXPECT_TRUE(torch::allclose(r, g, 1e-5, 1e-5));
  EXPECT_EQ(transform->describe(),
            "Compose(Resize(256), CenterCrop(224), ToNormalizedFloat(mean=(0.485, 0.456, 0.406), "
            "std=(0.229, 0.224, 0.225), rgb))");
}

TEST(DataTransforms, BadInputIsAClearError) {
  auto rng = rng_for_test();
  const auto float_image = torch::zeros({3, 8, 8});
  EXPECT_THROW(Resize(4)(float_image, rng), tlkit::Error);
  EXPECT_THROW(Resize(0), tlkit::Error);
  EXPECT_THROW(RandomResizedCrop(8, {0.5, 0.2}), tlkit::Error);
  EXPECT_THROW(HorizontalFlip(1.5), tlkit::Error);
  EXPECT_THROW(Normalize(Normalization{{0, 0, 0}, {1, 0, 1}}), tlkit::Error);
  try {
    ToNormalizedFloat()(float_image, rng);
    FAIL() << "expected tlkit::Error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("uint8 H x W x C"), std::string::npos) << e.what();
  }
}
