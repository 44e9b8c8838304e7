// Resampling with OpenCV on uint8 images: the crop is a view, the resize writes into the result.

#include <opencv2/imgproc.hpp>

#include "cv_tensor.h"
#include "resize.h"

namespace tlkit::data::detail {
namespace {

int cv_flag(Interpolation interpolation, int height, int width, int out_height, int out_width) {
  switch (interpolation) {
    case Interpolation::kBilinear: return cv::INTER_LINEAR;
    case Interpolation::kArea: return cv::INTER_AREA;
    case Interpolation::kNearest: return cv::INTER_NEAREST;
    case Interpolation::kAuto: break;
  }
  return out_height < height && out_width < width ? cv::INTER_AREA : cv::INTER_LINEAR;
}

}  // namespace

at::Tensor resize_region(const at::Tensor& image, int top, int left, int height, int width,
                         int out_height, int out_width, Interpolation interpolation) {
  const auto source = image.contiguous();
  const cv::Mat region = as_mat(source)(cv::Rect(left, top, width, height));
  auto [result, out] = new_image(out_height, out_width, static_cast<int>(source.size(2)));
  if (out_height == height && out_width == width) {
    region.copyTo(out);
  } else {
    cv::resize(region, out, out.size(), 0, 0, cv_flag(interpolation, height, width, out_height, out_width));
  }
  return result;
}

}  // namespace tlkit::data::detail
