// Test-time augmentation views: five-crop and ten-crop against torchvision 0.14's FiveCrop and
// TenCrop on a fixed image (Debian's python3), the centre view against the evaluation transform,
// and the refusal of unknown modes and crops that do not fit.
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/data/tta.h>

#include "model/fixtures.h"
#include "support/test_support.h"

using tlkit::data::CropBox;
using tlkit::data::TtaMode;
using tlkit::data::TtaViews;

namespace {

// H x W x 3 uint8 with pixel (h, w, c) = (31 h + 7 w + 101 c) mod 256 (restated in Python).
at::Tensor fixed_image(int height, int width) {
  auto h = torch::arange(height).view({height, 1, 1});
  auto w = torch::arange(width).view({1, width, 1});
  auto c = torch::arange(3).view({1, 1, 3});
  return ((31 * h + 7 * w + 101 * c) % 256).to(torch::kByte).contiguous();
}

// torchvision's crops of the fixed image as [V, 3, crop, crop] uint8 (printed as integers).
at::Tensor torchvision_crops(const char* transform, int height, int width, int crop) {
  tlkit::test::TempDir dir;
  std::ostringstream code;
  code << "import torchvision.transforms as T\n"
       << "h = torch.arange(" << height << ").view(-1, 1, 1)\n"
       << "w = torch.arange(" << width << ").view(1, -1, 1)\n"
       << "c = torch.arange(3).view(1, 1, -1)\n"
       << "img = ((31 * h + 7 * w + 101 * c) % 256).to(torch.uint8).permute(2, 0, 1)\n"
       << "views = T." << transform << "(" << crop << ")(img)\n"
       << "print(' '.join(str(int(v)) for v in torch.stack(views).flatten()))\n";
  const auto result = tlkit::test::run_python(code.str(), dir.path());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::istringstream in(result.output);
  std::vector<std::int64_t> values;
  for (std::int64_t v; in >> v;) values.push_back(v);
  const std::int64_t count = std::string(transform) == "TenCrop" ? 10 : 5;
  EXPECT_EQ(static_cast<std::int64_t>(values.size()), count * 3 * crop * crop) << result.output;
  if (static_cast<std::int64_t>(values.size()) != count * 3 * crop * crop) return {};
  return torch::tensor(values).view({count, 3, crop, crop});
}

// Our views without resize or normalisation, back to the uint8 values.
at::Tensor our_crops(TtaMode mode, const at::Tensor& image, int crop) {
  TtaViews views(mode, 0, crop, tlkit::data::Normalization{}, tlkit::data::Channels::kKeep);
  std::mt19937_64 rng(0);
  return (views(image, rng) * 255).round().to(torch::kLong);
}

}  // namespace

// 11 x 14 with crop 6: H - 6 = 5 is odd, so the centre's top is round(2.5) = 2 (half to even).
TEST(Tta, FiveCropEqualsTorchvision) {
  const auto expected = torchvision_crops("FiveCrop", 11, 14, 6);
  ASSERT_TRUE(expected.defined());
  const auto ours = our_crops(TtaMode::kFiveCrop, fixed_image(11, 14), 6);
  ASSERT_EQ(ours.sizes(), expected.sizes());
  EXPECT_TRUE(torch::equal(ours, expected)) << ours - expected;
}

TEST(Tta, TenCropEqualsTorchvision) {
  const auto expected = torchvision_crops("TenCrop", 11, 14, 6);
  ASSERT_TRUE(expected.defined());
  const auto ours = our_crops(TtaMode::kTenCrop, fixed_image(11, 14), 6);
  ASSERT_EQ(ours.sizes(), expected.sizes());
  EXPECT_TRUE(torch::equal(ours, expected)) << ours - expected;
}

TEST(Tta, FiveCropBoxesAreTheCornersAndTheCentre) {
  const std::vector<CropBox> expected{
      {0, 0, 6, 6}, {0, 8, 6, 6}, {5, 0, 6, 6}, {5, 8, 6, 6}, {2, 4, 6, 6}};
  EXPECT_EQ(tlkit::data::five_crop_boxes(11, 14, 6, 6), expected);
  tlkit::test::expect_error([] { tlkit::data::five_crop_boxes(5, 14, 6, 6); },
                            "do not fit in the 14x5 image");
}

// With a resize, the fifth view is the evaluation transform's centre crop, and flip's second view
// is the first one mirrored.
TEST(Tta, ViewsAgreeWithTheEvaluationTransform) {
  torch::manual_seed(3);
  const auto image = torch::randint(0, 256, {40, 52, 3}).to(torch::kByte);
  std::mt19937_64 rng(0);
  const auto eval = (*tlkit::data::eval_transform(24, 20))(image, rng);
  const auto five = TtaViews(TtaMode::kFiveCrop, 24, 20)(image, rng);
  ASSERT_EQ(five.sizes(), (std::vector<std::int64_t>{5, 3, 20, 20}));
  EXPECT_TRUE(torch::equal(five[4], eval));
  EXPECT_FALSE(torch::equal(five[0], eval));
  const auto flip = TtaViews(TtaMode::kFlip, 24, 20)(image, rng);
  ASSERT_EQ(flip.sizes(), (std::vector<std::int64_t>{2, 3, 20, 20}));
  EXPECT_TRUE(torch::equal(flip[0], eval));
  EXPECT_TRUE(torch::equal(flip[1], eval.flip({2})));
  EXPECT_EQ(TtaViews(TtaMode::kNone, 24, 20)(image, rng).sizes(),
            (std::vector<std::int64_t>{1, 3, 20, 20}));
}

TEST(Tta, UnknownModesAreRefused) {
  EXPECT_EQ(tlkit::data::parse_tta("ten-crop"), TtaMode::kTenCrop);
  EXPECT_EQ(tlkit::data::tta_views(TtaMode::kTenCrop), 10);
  tlkit::test::expect_error([] { tlkit::data::parse_tta("fliip"); },
                            "unknown test-time augmentation 'fliip': use none, flip, five-crop");
  tlkit::test::expect_error([] { TtaViews(TtaMode::kFiveCrop, 0, 0); }, "give --input-size");
}
