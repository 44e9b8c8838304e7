#pragma once
// Automatic augmentation policies on uint8 H x W x C images (C = 1 or 3), after the random crop
// and flip and before the conversion to float, as torchvision's recommended order
// (RandomResizedCrop, flip, TrivialAugmentWide, ToTensor, Normalize, RandomErasing).
//
//   TrivialAugmentWide: one op drawn uniformly from the 14 below, one of 31 magnitude bins drawn
//     uniformly, its sign flipped with probability 1/2 (for the signed ops).
//   RandAugment(N, M): N ops drawn uniformly (with replacement), each at magnitude bin M of 31,
//     its sign flipped with probability 1/2.
//
// The ops and magnitude tables are torchvision 0.14's (transforms/autoaugment.py `_apply_op`,
// `_augmentation_space`) on tensors: Identity, ShearX, ShearY, TranslateX, TranslateY, Rotate
// (nearest, fill 0; shears about the top-left corner, rotation about the centre), Brightness,
// Color, Contrast, Sharpness (blends at 1 + magnitude, truncated to uint8), Posterize, Solarize,
// AutoContrast, Equalize. Each op is restated with the same ATen operations as
// transforms/functional_tensor.py, so it matches torchvision's tensor path pixel for pixel.
// Draws come from the generator given (the DataLoader's per-(seed, epoch, index) stream).
// Sources: Cubuk et al. 2020, "RandAugment"; Mueller & Hutter 2021, "TrivialAugment".

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tlkit/data/transforms.h>

namespace tlkit::data {

enum class AugmentOp {
  kIdentity,
  kShearX,
  kShearY,
  kTranslateX,
  kTranslateY,
  kRotate,
  kBrightness,
  kColor,
  kContrast,
  kSharpness,
  kPosterize,
  kSolarize,
  kAutoContrast,
  kEqualize
};
constexpr int kAugmentOpCount = 14;
constexpr int kMagnitudeBins = 31;  // torchvision's num_magnitude_bins default

const char* augment_op_name(AugmentOp op);  // "ShearX", as torchvision names it
// The op of a torchvision name; throws tlkit::Error for an unknown one.
AugmentOp augment_op_from_name(const std::string& name);

// One op at a signed magnitude, as torchvision's autoaugment._apply_op(img, op, magnitude,
// NEAREST, fill=None) on the C x H x W view of the image. uint8 H x W x C in and out.
at::Tensor apply_augment_op(const at::Tensor& image, AugmentOp op, double magnitude);

// An op's magnitude per bin (empty: the op takes none) and whether its sign is drawn: torchvision's
// RandAugment._augmentation_space(bins, (height, width)) (translations scale with the image) and
// TrivialAugmentWide._augmentation_space(bins) (the wide ranges), float32 values as torch makes
// them.
struct OpMagnitudes {
  std::vector<double> values;
  bool is_signed = false;
};
OpMagnitudes rand_augment_magnitudes(AugmentOp op, int bins, std::int64_t height,
                                     std::int64_t width);
OpMagnitudes trivial_augment_magnitudes(AugmentOp op, int bins);

// The --augment setting: "none", "trivial" or "rand:N,M".
struct AutoAugmentSpec {
  std::string policy = "none";  // none | trivial | rand
  int num_ops = 2;              // rand: ops per image
  int magnitude = 9;            // rand: the bin in [0, kMagnitudeBins)
  bool enabled() const { return policy != "none"; }
  std::string text() const;  // "none", "trivial", "rand:2,9"
};
// Parses a spec; throws tlkit::Error saying what is accepted.
AutoAugmentSpec parse_auto_augment(const std::string& spec);

class TrivialAugmentWide : public Transform {
 public:
  explicit TrivialAugmentWide(int bins = kMagnitudeBins);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override { return "TrivialAugmentWide"; }

 private:
  int bins_;
  std::vector<OpMagnitudes> space_;  // per op
};

class RandAugment : public Transform {
 public:
  RandAugment(int num_ops, int magnitude, int bins = kMagnitudeBins);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  int num_ops_, magnitude_, bins_;
};

// The transform of a spec; nullptr for "none".
std::shared_ptr<Transform> auto_augment(const AutoAugmentSpec& spec);

}  // namespace tlkit::data
