#pragma once
// Test-time augmentation: each image becomes V views, stacked as one float [V, C, H, W] sample,
// and the prediction is the mean of the views' softmax outputs (train/tta_network.h),
//   p(x) = 1/V · Σ_v softmax(f(view_v(x))).
// The views, as torchvision 0.14 makes them:
//   none       the evaluation transform (resize, centre crop), V = 1
//   flip       that image and its left-right mirror, V = 2
//   five-crop  Resize(resize), then FiveCrop(crop): the four corner crops and the centre crop
//              (top = round((H - crop) / 2), half to even), in that order, V = 5
//   ten-crop   TenCrop(crop): the five crops, then the five crops of the mirrored image, V = 10
// where resize and crop are the model's preprocessing (its resize and input size).

#include <memory>
#include <string>
#include <vector>

#include <tlkit/data/transforms.h>

namespace tlkit::data {

enum class TtaMode { kNone, kFlip, kFiveCrop, kTenCrop };

// "none", "flip", "five-crop" or "ten-crop"; anything else throws tlkit::Error listing them.
TtaMode parse_tta(const std::string& name);
std::string tta_name(TtaMode mode);
int tta_views(TtaMode mode);  // V: 1, 2, 5 or 10

struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox& other) const {
    return top == other.top && left == other.left && height == other.height && width == other.width;
  }
};

// torchvision's five_crop regions of a height x width image: top-left, top-right, bottom-left,
// bottom-right, centre. Throws tlkit::Error when the crop is larger than the image.
std::vector<CropBox> five_crop_boxes(int height, int width, int crop_height, int crop_width);

// uint8 HWC in, float [V, C, crop, crop] out (each view normalised as ToNormalizedFloat does).
class TtaViews : public Transform {
 public:
  // resize <= 0 leaves the resize out; crop <= 0 is allowed only for none and flip (the image is
  // fed whole), as eval_transform.
  TtaViews(TtaMode mode, int resize, int crop, Normalization normalization = imagenet(),
           Channels channels = Channels::kRgb);
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  std::vector<at::Tensor> crops(const at::Tensor& resized) const;

  TtaMode mode_;
  int resize_, crop_;
  std::shared_ptr<Transform> eval_;  // resize + centre crop + normalise (none, flip)
  std::shared_ptr<Transform> resize_step_;
  ToNormalizedFloat normalize_;
};

}  // namespace tlkit::data
