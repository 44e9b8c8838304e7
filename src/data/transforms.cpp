#include <tlkit/data/transforms.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/data/auto_augment.h>
#include <tlkit/data/random.h>
#include <tlkit/data/random_erasing.h>

#include "resize.h"

namespace tlkit::data {
namespace {

// Python's round(): half to even (the current rounding mode is round-to-nearest-even).
int round_half_even(double value) { return static_cast<int>(std::nearbyint(value)); }

void check_image(const at::Tensor& image, const char* transform) {
  TLKIT_CHECK(image.defined() && image.dim() == 3 && image.scalar_type() == at::kByte, transform,
              " takes a uint8 H x W x C image (as Dataset::get() returns), got ",
              image.defined() ? image.sizes() : at::IntArrayRef{}, " ",
              image.defined() ? image.scalar_type() : at::kByte,
              "; put geometric transforms before ToFloat / ToNormalizedFloat");
}

std::string triple(const std::array<float, 3>& values) {
  std::ostringstream out;
  out << "(" << values[0] << ", " << values[1] << ", " << values[2] << ")";
  return out.str();
}

// Mirrors each row of an interleaved uint8 image with C channels.
template <int C>
void mirror_rows(const uint8_t* in, uint8_t* out, int64_t rows, int64_t width) {
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* from = in + y * width * C;
    uint8_t* to = out + (y + 1) * width * C - C;
    for (int64_t x = 0; x < width; ++x, from += C, to -= C) {
      for (int c = 0; c < C; ++c) to[c] = from[c];
    }
  }
}

void check_normalization(const Normalization& n) {
  for (float s : n.std)
    TLKIT_CHECK(s > 0, "normalisation std ", triple(n.std), " must be positive");
}

}  // namespace

Normalization imagenet() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }

Compose::Compose(std::vector<std::shared_ptr<Transform>> steps) : steps_(std::move(steps)) {
  for (const auto& step : steps_) TLKIT_CHECK(step != nullptr, "Compose got a null transform");
}

at::Tensor Compose::operator()(at::Tensor image, std::mt19937_64& rng) const {
  for (const auto& step : steps_) image = (*step)(std::move(image), rng);
  return image;
}

std::string Compose::describe() const {
  std::string text = "Compose(";
  for (size_t i = 0; i < steps_.size(); ++i) text += (i ? ", " : "") + steps_[i]->describe();
  return text + ")";
}

Resize::Resize(int size, Interpolation interpolation) : size_(size), interpolation_(interpolation) {
  TLKIT_CHECK(size > 0, "Resize size ", size, " must be positive, e.g. 256");
}

at::Tensor Resize::operator()(at::Tensor image, std::mt19937_64&) const {
  check_image(image, "Resize");
  const auto height = static_cast<int>(image.size(0)), width = static_cast<int>(image.size(1));
  const int shorter = std::min(height, width), longer = std::max(height, width);
  const int new_longer = static_cast<int>(static_cast<double>(size_) * longer / shorter);
  const int out_height = height <= width ? size_ : new_longer;
  const int out_width = height <= width ? new_longer : size_;
  if (out_height == height && out_width == width) return image;
  return detail::resize_region(image, 0, 0, height, width, out_height, out_width, interpolation_);
}

std::string Resize::describe() const { return "Resize(" + std::to_string(size_) + ")"; }

CenterCrop::CenterCrop(int height, int width) : height_(height), width_(width) {
  TLKIT_CHECK(height > 0 && width > 0, "CenterCrop size ", height, " x ", width,
              " must be positive");
}

at::Tensor CenterCrop::operator()(at::Tensor image, std::mt19937_64&) const {
  check_image(image, "CenterCrop");
  auto height = static_cast<int>(image.size(0)), width = static_cast<int>(image.size(1));
  if (height < height_ || width < width_) {  // pad with zeros around the image, as torchvision
    const int pad_h = std::max(height_ - height, 0), pad_w = std::max(width_ - width, 0);
    image = at::constant_pad_nd(image,
                                {0, 0, pad_w / 2, (pad_w + 1) / 2, pad_h / 2, (pad_h + 1) / 2}, 0);
    height += pad_h;
    width += pad_w;
  }
  const int top = round_half_even((height - height_) / 2.0);
  const int left = round_half_even((width - width_) / 2.0);
  return image.slice(0, top, top + height_).slice(1, left, left + width_).contiguous();
}

std::string CenterCrop::describe() const {
  return "CenterCrop(" + std::to_string(height_) +
         (height_ == width_ ? "" : ", " + std::to_string(width_)) + ")";
}

RandomResizedCrop::RandomResizedCrop(int size, std::pair<double, double> scale,
                                     std::pair<double, double> ratio, Interpolation interpolation)
    : size_(size), scale_(scale), ratio_(ratio), interpolation_(interpolation) {
  TLKIT_CHECK(size > 0, "RandomResizedCrop size ", size, " must be positive, e.g. 224");
  TLKIT_CHECK(scale.first > 0 && scale.first <= scale.second && scale.second <= 1,
              "RandomResizedCrop scale (", scale.first, ", ", scale.second,
              ") must satisfy 0 < low <= high <= 1, e.g. (0.08, 1)");
  TLKIT_CHECK(ratio.first > 0 && ratio.first <= ratio.second, "RandomResizedCrop ratio (",
              ratio.first, ", ", ratio.second, ") must satisfy 0 < low <= high, e.g. (3/4, 4/3)");
}

RandomResizedCrop::Box RandomResizedCrop::sample_box(int height, int width,
                                                     std::mt19937_64& rng) const {
  const double area = static_cast<double>(height) * width;
  const double log_low = std::log(ratio_.first), log_high = std::log(ratio_.second);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, scale_.first, scale_.second);
    const double aspect = std::exp(uniform(rng, log_low, log_high));
    const int w = round_half_even(std::sqrt(target_area * aspect));
    const int h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top =
          static_cast<int>(uniform_below(rng, static_cast<std::uint64_t>(height - h + 1)));
      const int left =
          static_cast<int>(uniform_below(rng, static_cast<std::uint64_t>(width - w + 1)));
      return {top, left, h, w};
    }
  }
  // Fallback: the whole image, or its centre clamped to the ratio range.
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < ratio_.first) {
    h = round_half_even(w / ratio_.first);
  } else if (in_ratio > ratio_.second) {
    w = round_half_even(h * ratio_.second);
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

at::Tensor RandomResizedCrop::operator()(at::Tensor image, std::mt19937_64& rng) const {
  check_image(image, "RandomResizedCrop");
  const auto box =
      sample_box(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)), rng);
  return detail::resize_region(image, box.top, box.left, box.height, box.width, size_, size_,
                               interpolation_);
}

std::string RandomResizedCrop::describe() const {
  std::ostringstream out;
  out << "RandomResizedCrop(" << size_ << ", scale=(" << scale_.first << ", " << scale_.second
      << "), ratio=(" << ratio_.first << ", " << ratio_.second << "))";
  return out.str();
}

HorizontalFlip::HorizontalFlip(double p) : p_(p) {
  TLKIT_CHECK(p >= 0 && p <= 1, "HorizontalFlip probability ", p, " must be in [0, 1], e.g. 0.5");
}

at::Tensor HorizontalFlip::operator()(at::Tensor image, std::mt19937_64& rng) const {
  TLKIT_CHECK(image.defined() && image.dim() == 3, "HorizontalFlip takes a 3-d image, got ",
              image.defined() ? image.sizes() : at::IntArrayRef{});
  if (uniform01(rng) >= p_) return image;
  // float images are C x H x W (width = dim 2); uint8 ones H x W x C, mirrored pixel by pixel
  // (at::flip is ten times slower on interleaved bytes).
  if (image.scalar_type() != at::kByte) return at::flip(image, {2});
  const auto source = image.contiguous();
  auto result = at::empty_like(source);
  const int64_t rows = source.size(0), width = source.size(1), channels = source.size(2);
  const uint8_t* in = source.data_ptr<uint8_t>();
  uint8_t* out = result.data_ptr<uint8_t>();
  switch (channels) {
    case 1:
      mirror_rows<1>(in, out, rows, width);
      break;
    case 3:
      mirror_rows<3>(in, out, rows, width);
      break;
    default:
      for (int64_t y = 0; y < rows; ++y) {
        for (int64_t x = 0; x < width; ++x) {
          std::memcpy(out + (y * width + width - 1 - x) * channels, in + (y * width + x) * channels,
                      static_cast<size_t>(channels));
        }
      }
  }
  return result;
}

std::string HorizontalFlip::describe() const {
  std::ostringstream out;
  out << "HorizontalFlip(" << p_ << ")";
  return out.str();
}

at::Tensor GreyToRgb::operator()(at::Tensor image, std::mt19937_64&) const {
  check_image(image, "GreyToRgb");
  return image.size(2) == 1 ? image.expand({image.size(0), image.size(1), 3}).contiguous() : image;
}

at::Tensor ToFloat::operator()(at::Tensor image, std::mt19937_64&) const {
  check_image(image, "ToFloat");
  return image.permute({2, 0, 1}).to(at::kFloat).div_(255.0f).contiguous();
}

Normalize::Normalize(Normalization normalization) : normalization_(normalization) {
  check_normalization(normalization_);
}

at::Tensor Normalize::operator()(at::Tensor image, std::mt19937_64&) const {
  TLKIT_CHECK(
      image.dim() == 3 && image.is_floating_point() && (image.size(0) == 1 || image.size(0) == 3),
      "Normalize takes a float C x H x W image with 1 or 3 channels, got ", image.sizes(),
      "; put ToFloat before it");
  const auto channels = image.size(0);
  auto mean = at::tensor(
      std::vector<float>(normalization_.mean.begin(), normalization_.mean.begin() + channels));
  auto std = at::tensor(
      std::vector<float>(normalization_.std.begin(), normalization_.std.begin() + channels));
  return (image - mean.view({channels, 1, 1})) / std.view({channels, 1, 1});
}

std::string Normalize::describe() const {
  return "Normalize(mean=" + triple(normalization_.mean) + ", std=" + triple(normalization_.std) +
         ")";
}

ToNormalizedFloat::ToNormalizedFloat(Normalization normalization, Channels channels)
    : normalization_(normalization), channels_(channels) {
  check_normalization(normalization_);
}

at::Tensor ToNormalizedFloat::operator()(at::Tensor image, std::mt19937_64&) const {
  check_image(image, "ToNormalizedFloat");
  const auto source = image.contiguous();
  const int64_t height = source.size(0), width = source.size(1), channels = source.size(2);
  TLKIT_CHECK(channels == 1 || channels == 3, "ToNormalizedFloat takes grey or RGB images, got ",
              channels, " channels");
  const int64_t out_channels = channels_ == Channels::kRgb    ? 3
                               : channels_ == Channels::kGrey ? 1
                                                              : channels,
                pixels = height * width;
  auto result = at::empty({out_channels, height, width}, at::kFloat);
  const uint8_t* in = source.data_ptr<uint8_t>();
  float* out = result.data_ptr<float>();
  if (out_channels == 1 && channels == 3) {
    // PIL's convert('L'): L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
    const float scale = 1.0f / (255.0f * normalization_.std[0]);
    const float bias = -normalization_.mean[0] / normalization_.std[0];
    for (int64_t i = 0; i < pixels; ++i) {
      const uint8_t* rgb = in + 3 * i;
      const std::uint32_t luma =
          (19595u * rgb[0] + 38470u * rgb[1] + 7471u * rgb[2] + 32768u) >> 16;
      out[i] = static_cast<float>(luma) * scale + bias;
    }
    return result;
  }
  for (int64_t c = 0; c < out_channels; ++c) {
    // (x / 255 - mean) / std == x * scale + bias
    const float scale = 1.0f / (255.0f * normalization_.std[static_cast<size_t>(c)]);
    const float bias =
        -normalization_.mean[static_cast<size_t>(c)] / normalization_.std[static_cast<size_t>(c)];
    const uint8_t* from = in + (channels == 1 ? 0 : c);
    float* to = out + c * pixels;
    for (int64_t i = 0; i < pixels; ++i)
      to[i] = static_cast<float>(from[i * channels]) * scale + bias;
  }
  return result;
}

std::string ToNormalizedFloat::describe() const {
  return std::string("ToNormalizedFloat(mean=") + triple(normalization_.mean) +
         ", std=" + triple(normalization_.std) +
         (channels_ == Channels::kRgb    ? ", rgb"
          : channels_ == Channels::kGrey ? ", grey"
                                         : "") +
         ")";
}

std::shared_ptr<Transform> eval_transform(int resize, int crop, Normalization normalization,
                                          Channels channels) {
  std::vector<std::shared_ptr<Transform>> steps;
  if (resize > 0) steps.push_back(std::make_shared<Resize>(resize));
  if (crop > 0) steps.push_back(std::make_shared<CenterCrop>(crop));
  steps.push_back(std::make_shared<ToNormalizedFloat>(normalization, channels));
  return std::make_shared<Compose>(std::move(steps));
}

std::shared_ptr<Transform> train_transform(int crop, Normalization normalization,
                                           Augmentation augmentation, Channels channels) {
  std::vector<std::shared_ptr<Transform>> steps;
  steps.push_back(
      std::make_shared<RandomResizedCrop>(crop, augmentation.scale, augmentation.ratio));
  if (augmentation.flip > 0) steps.push_back(std::make_shared<HorizontalFlip>(augmentation.flip));
  if (auto policy = auto_augment(parse_auto_augment(augmentation.auto_augment)))
    steps.push_back(std::move(policy));
  steps.push_back(std::make_shared<ToNormalizedFloat>(normalization, channels));
  if (augmentation.erasing > 0)
    steps.push_back(
        std::make_shared<RandomErasing>(augmentation.erasing, augmentation.erasing_random));
  return std::make_shared<Compose>(std::move(steps));
}

#ifndef TLKIT_WITH_OPENCV
namespace detail {
at::Tensor resize_region(const at::Tensor& image, int top, int left, int height, int width,
                         int out_height, int out_width, Interpolation interpolation) {
  auto region = image.slice(0, top, top + height).slice(1, left, left + width);
  auto planes = region.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  auto resized = interpolation == Interpolation::kNearest
                     ? at::upsample_nearest2d(planes, {out_height, out_width})
                     : at::upsample_bilinear2d(planes, {out_height, out_width}, false);
  return resized.squeeze(0).permute({1, 2, 0}).round().clamp(0, 255).to(at::kByte).contiguous();
}
}  // namespace detail
#endif

}  // namespace tlkit::data
