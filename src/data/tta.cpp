#include <tlkit/data/tta.h>

#include <cmath>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>

namespace tlkit::data {

TtaMode parse_tta(const std::string& name) {
  if (name == "none") return TtaMode::kNone;
  if (name == "flip") return TtaMode::kFlip;
  if (name == "five-crop") return TtaMode::kFiveCrop;
  if (name == "ten-crop") return TtaMode::kTenCrop;
  throw Error("unknown test-time augmentation '" + name +
              "': use none, flip, five-crop or ten-crop");
}

std::string tta_name(TtaMode mode) {
  switch (mode) {
    case TtaMode::kNone:
      return "none";
    case TtaMode::kFlip:
      return "flip";
    case TtaMode::kFiveCrop:
      return "five-crop";
    case TtaMode::kTenCrop:
      return "ten-crop";
  }
  return "none";
}

int tta_views(TtaMode mode) {
  switch (mode) {
    case TtaMode::kNone:
      return 1;
    case TtaMode::kFlip:
      return 2;
    case TtaMode::kFiveCrop:
      return 5;
    case TtaMode::kTenCrop:
      return 10;
  }
  return 1;
}

std::vector<CropBox> five_crop_boxes(int height, int width, int crop_height, int crop_width) {
  TLKIT_CHECK(crop_height > 0 && crop_width > 0, "a five-crop needs a positive crop size, got ",
              crop_height, "x", crop_width);
  TLKIT_CHECK(crop_height <= height && crop_width <= width, "the ", crop_width, "x", crop_height,
              " crops of a five-crop do not fit in the ", width, "x", height,
              " image; give a --resize of at least the input size");
  // The centre as torchvision's center_crop: int(round((H - h) / 2.0)), Python rounding.
  const int centre_top = static_cast<int>(std::nearbyint((height - crop_height) / 2.0));
  const int centre_left = static_cast<int>(std::nearbyint((width - crop_width) / 2.0));
  return {{0, 0, crop_height, crop_width},
          {0, width - crop_width, crop_height, crop_width},
          {height - crop_height, 0, crop_height, crop_width},
          {height - crop_height, width - crop_width, crop_height, crop_width},
          {centre_top, centre_left, crop_height, crop_width}};
}

TtaViews::TtaViews(TtaMode mode, int resize, int crop, Normalization normalization,
                   Channels channels)
    : mode_(mode),
      resize_(resize),
      crop_(crop),
      eval_(eval_transform(resize, crop, normalization, channels)),
      normalize_(normalization, channels) {
  TLKIT_CHECK(crop > 0 || mode == TtaMode::kNone || mode == TtaMode::kFlip,
              "test-time augmentation ", tta_name(mode),
              " crops the model's input size out of the image, but the model has none; give "
              "--input-size");
  if (resize > 0) resize_step_ = std::make_shared<Resize>(resize);
}

std::vector<at::Tensor> TtaViews::crops(const at::Tensor& resized) const {
  std::vector<at::Tensor> views;
  const auto boxes = five_crop_boxes(static_cast<int>(resized.size(0)),
                                     static_cast<int>(resized.size(1)), crop_, crop_);
  std::mt19937_64 unused;
  for (const auto& box : boxes)
    views.push_back(normalize_(resized.slice(0, box.top, box.top + box.height)
                                   .slice(1, box.left, box.left + box.width)
                                   .contiguous(),
                               unused));
  return views;
}

at::Tensor TtaViews::operator()(at::Tensor image, std::mt19937_64& rng) const {
  if (mode_ == TtaMode::kNone || mode_ == TtaMode::kFlip) {
    auto view = (*eval_)(std::move(image), rng);
    if (mode_ == TtaMode::kNone) return view.unsqueeze(0);
    return at::stack({view, view.flip({2})});  // CHW: the mirror reverses the width
  }
  TLKIT_CHECK(image.dim() == 3, "test-time augmentation takes a uint8 H x W x C image, got ",
              image.sizes());
  const auto resized = resize_step_ ? (*resize_step_)(std::move(image), rng) : image;
  auto views = crops(resized);
  if (mode_ == TtaMode::kTenCrop) {
    // TenCrop: the five crops of the mirrored image (not the mirrors of the five crops: the
    // centre differs by a pixel when H - crop or W - crop is odd).
    auto mirrored = crops(resized.flip({1}).contiguous());
    views.insert(views.end(), mirrored.begin(), mirrored.end());
  }
  return at::stack(views);
}

std::string TtaViews::describe() const {
  if (mode_ == TtaMode::kNone || mode_ == TtaMode::kFlip)
    return "TTA(" + tta_name(mode_) + ", " + eval_->describe() + ")";
  return "TTA(" + tta_name(mode_) + ", " +
         (resize_step_ ? resize_step_->describe() + ", " : std::string()) +
         (mode_ == TtaMode::kFiveCrop ? "FiveCrop(" : "TenCrop(") + std::to_string(crop_) + "), " +
         normalize_.describe() + ")";
}

}  // namespace tlkit::data
