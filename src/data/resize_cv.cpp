// Resampling with OpenCV on uint8 images: the crop is a view, the resize writes into the result.

#include <opencv2/imgproc.hpp>

#include "cv_tensor.h"
#include "resize.h"

namespace tlkit::data::detail {
namespace {

int cv_flag(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kArea:
      return cv::INTER_AREA;
    case Interpolation::kNearest:
      return cv::INTER_NEAREST;
    default:
      return cv::INTER_LINEAR;
  }
}

// kAuto's first step: average k x k blocks, k = the integer part of the shrink factor per axis
// (OpenCV's fast integer-factor INTER_AREA path, on the region trimmed to whole blocks around its
// centre). What remains is a resize by a factor below 2, which bilinear handles without aliasing
// much: the "reduce, then resample" scheme of PIL's reducing_gap, at a fraction of a general area
// resize's cost (about 0.3 ms instead of 1.3 ms for a 224 x 224 crop on this machine).
cv::Mat reduce_by_blocks(const cv::Mat& region, int out_height, int out_width) {
  const int kx = std::max(1, region.cols / out_width), ky = std::max(1, region.rows / out_height);
  if (kx == 1 && ky == 1) return region;
  const int width = region.cols / kx * kx, height = region.rows / ky * ky;
  const cv::Mat whole =
      region(cv::Rect((region.cols - width) / 2, (region.rows - height) / 2, width, height));
  cv::Mat reduced;
  cv::resize(whole, reduced, cv::Size(width / kx, height / ky), 0, 0, cv::INTER_AREA);
  return reduced;
}

}  // namespace

at::Tensor resize_region(const at::Tensor& image, int top, int left, int height, int width,
                         int out_height, int out_width, Interpolation interpolation) {
  const auto source = image.contiguous();
  cv::Mat region = as_mat(source)(cv::Rect(left, top, width, height));
  auto [result, out] = new_image(out_height, out_width, static_cast<int>(source.size(2)));
  if (interpolation == Interpolation::kAuto)
    region = reduce_by_blocks(region, out_height, out_width);
  if (region.rows == out_height && region.cols == out_width) {
    region.copyTo(out);
  } else {
    cv::resize(region, out, out.size(), 0, 0, cv_flag(interpolation));
  }
  return result;
}

}  // namespace tlkit::data::detail
