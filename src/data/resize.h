#pragma once
// Internal: the resampling kernel behind Resize and RandomResizedCrop (OpenCV in resize_cv.cpp,
// an ATen fallback in transforms.cpp when tlkit is built without OpenCV).

#include <ATen/core/Tensor.h>

#include <tlkit/data/transforms.h>

namespace tlkit::data::detail {

// The region (top, left, height, width) of a uint8 H x W x C image, resized to
// out_height x out_width. The region must lie inside the image.
at::Tensor resize_region(const at::Tensor& image, int top, int left, int height, int width,
                         int out_height, int out_width, Interpolation interpolation);

}  // namespace tlkit::data::detail
