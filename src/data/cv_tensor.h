#pragma once
// Internal: zero-copy views between uint8 HWC tensors and cv::Mat (used by the *_cv.cpp files).

#include <ATen/ATen.h>
#include <opencv2/core.hpp>

#include <tlkit/core/error.h>

namespace tlkit::data::detail {

// A cv::Mat sharing the memory of a contiguous uint8 H x W x C tensor (C <= 4).
inline cv::Mat as_mat(const at::Tensor& image) {
  TLKIT_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte && image.is_contiguous(),
              "expected a contiguous uint8 H x W x C image tensor, got ", image.sizes(), " ",
              image.scalar_type(), "; image transforms take what Dataset::get() returns");
  const auto channels = static_cast<int>(image.size(2));
  TLKIT_CHECK(channels >= 1 && channels <= 4, "an image needs 1 to 4 channels, got ", channels);
  return cv::Mat(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)), CV_8UC(channels),
                 image.data_ptr<uint8_t>());
}

// A new uint8 H x W x C tensor and a cv::Mat writing into it.
inline std::pair<at::Tensor, cv::Mat> new_image(int height, int width, int channels) {
  auto tensor = at::empty({height, width, channels}, at::kByte);
  cv::Mat mat(height, width, CV_8UC(channels), tensor.data_ptr<uint8_t>());
  return {tensor, mat};
}

}  // namespace tlkit::data::detail
