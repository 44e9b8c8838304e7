#pragma once
// Image transforms: uint8 H x W x C images (as Dataset::get() returns them) to normalised float
// C x H x W tensors, the torchvision way.
//
// Geometric transforms (Resize, CenterCrop, RandomResizedCrop, HorizontalFlip) work on uint8 HWC
// with OpenCV, so images are resized before they are converted; ToNormalizedFloat then converts,
// expands grey to RGB and normalises in one pass: x' = (x / 255 - mean_c) / std_c.
// Random transforms draw only from the generator they are given; the DataLoader seeds one per
// sample from (seed, epoch, index), so augmentation does not depend on threads or timing.
// Sources: torchvision.transforms 0.14 (Resize, CenterCrop, RandomResizedCrop,
// RandomHorizontalFlip, ToTensor, Normalize); Szegedy et al. 2015 for the random-resized-crop
// augmentation.

#include <array>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::data {

struct Normalization {
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
};
Normalization imagenet();  // mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)

class Transform {
 public:
  virtual ~Transform() = default;
  virtual at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const = 0;
  virtual std::string describe() const { return "transform"; }  // e.g. "Resize(256)"
};

// Applies transforms in order.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<Transform>> steps);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;  // "Compose(Resize(256), CenterCrop(224), ...)"
  const std::vector<std::shared_ptr<Transform>>& steps() const { return steps_; }

 private:
  std::vector<std::shared_ptr<Transform>> steps_;
};

// kAuto: when shrinking by k or more (k >= 2, per axis), first average k x k blocks, then resize
// bilinearly by the remaining factor (< 2); plain bilinear when enlarging. Anti-aliased like PIL's
// resize with reducing_gap, and four times faster than kArea (a general area resize).
enum class Interpolation { kAuto, kBilinear, kArea, kNearest };

// Resizes so the shorter side is `size`, keeping the aspect ratio (the longer side is truncated
// like torchvision: long' = int(size * long / short)). uint8 HWC.
class Resize : public Transform {
 public:
  explicit Resize(int size, Interpolation interpolation = Interpolation::kAuto);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  int size_;
  Interpolation interpolation_;
};

// Crops the central height x width region (top = round((H - h) / 2)); pads with zeros where the
// image is smaller than the crop. uint8 HWC.
class CenterCrop : public Transform {
 public:
  explicit CenterCrop(int size) : CenterCrop(size, size) {}
  CenterCrop(int height, int width);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  int height_, width_;
};

// A random region covering a `scale` fraction of the area with aspect ratio in `ratio`
// (log-uniform), resized to size x size. Ten tries; then a central crop clamped to `ratio`
// (torchvision's RandomResizedCrop.get_params, with Python's round-half-to-even). uint8 HWC.
class RandomResizedCrop : public Transform {
 public:
  struct Box {
    int top = 0, left = 0, height = 0, width = 0;
  };
  explicit RandomResizedCrop(int size, std::pair<double, double> scale = {0.08, 1.0},
                             std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0},
                             Interpolation interpolation = Interpolation::kAuto);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;
  Box sample_box(int height, int width, std::mt19937_64& rng) const;

 private:
  int size_;
  std::pair<double, double> scale_, ratio_;
  Interpolation interpolation_;
};

// Mirrors left-right with probability p (one draw per call). uint8 HWC or float CHW.
class HorizontalFlip : public Transform {
 public:
  explicit HorizontalFlip(double p = 0.5);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  double p_;
};

// Grey (C = 1) to RGB by repeating the channel; RGB passes through. uint8 HWC.
class GreyToRgb : public Transform {
 public:
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override { return "GreyToRgb"; }
};

// uint8 HWC in [0, 255] to float CHW in [0, 1] (torchvision ToTensor).
class ToFloat : public Transform {
 public:
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override { return "ToFloat"; }
};

// float CHW: x' = (x - mean_c) / std_c (torchvision Normalize).
class Normalize : public Transform {
 public:
  explicit Normalize(Normalization normalization = imagenet());
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  Normalization normalization_;
};

// The channels a model takes: RGB (grey images repeated, torchvision's convert('RGB')), grey (RGB
// images to luma with PIL's convert('L') weights 0.299, 0.587, 0.114, rounded), or as they come.
enum class Channels { kRgb, kGrey, kKeep };

// Channel conversion + ToFloat + Normalize in one pass over the pixels. uint8 HWC in.
class ToNormalizedFloat : public Transform {
 public:
  explicit ToNormalizedFloat(Normalization normalization = imagenet(),
                             Channels channels = Channels::kRgb);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  Normalization normalization_;
  Channels channels_;
};

// Evaluation: Resize(resize) -> CenterCrop(crop) -> ToNormalizedFloat(n) (grey becomes RGB).
// resize <= 0 or crop <= 0 leaves that step out (e.g. 32 x 32 CIFAR images fed as they are).
std::shared_ptr<Transform> eval_transform(int resize, int crop,
                                          Normalization normalization = imagenet(),
                                          Channels channels = Channels::kRgb);

struct Augmentation {
  std::pair<double, double> scale{0.08, 1.0};
  std::pair<double, double> ratio{3.0 / 4.0, 4.0 / 3.0};
  double flip = 0.5;  // probability of a horizontal flip
  // After the flip, on uint8: "none", "trivial" (TrivialAugmentWide) or "rand:N,M" (RandAugment),
  // see auto_augment.h.
  std::string auto_augment = "none";
  // After normalisation: torchvision's RandomErasing with probability `erasing` (0 = off), the box
  // filled with 0 or (erasing_random) per-pixel normal draws, see random_erasing.h.
  double erasing = 0;
  bool erasing_random = false;
};

// Training: RandomResizedCrop(crop, scale, ratio) -> HorizontalFlip(flip) -> [TrivialAugmentWide |
// RandAugment] -> ToNormalizedFloat(n) -> [RandomErasing].
std::shared_ptr<Transform> train_transform(int crop, Normalization normalization = imagenet(),
                                           Augmentation augmentation = {},
                                           Channels channels = Channels::kRgb);

}  // namespace tlkit::data
