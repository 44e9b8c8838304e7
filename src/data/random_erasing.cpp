#include <tlkit/data/random_erasing.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <tlkit/core/error.h>
#include <tlkit/data/random.h>

namespace tlkit::data {
namespace {

int round_half_even(double value) { return static_cast<int>(std::nearbyint(value)); }

// An integer in [0, n) from a uniform draw in [0, 1).
int below(double u, int n) { return std::min(n - 1, static_cast<int>(std::floor(u * n))); }

// n standard normal draws (Box-Muller on pairs of uniform draws; portable, unlike
// std::normal_distribution).
std::vector<float> normal_draws(size_t n, std::mt19937_64& rng) {
  std::vector<float> out(n);
  constexpr double kTwoPi = 6.283185307179586476925;
  for (size_t i = 0; i < n; i += 2) {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform01(rng)));  // 1 - u in (0, 1]
    const double angle = kTwoPi * uniform01(rng);
    out[i] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < n) out[i + 1] = static_cast<float>(radius * std::sin(angle));
  }
  return out;
}

}  // namespace

ErasingBox random_erasing_box(int height, int width, std::pair<double, double> scale,
                              std::pair<double, double> ratio,
                              const std::function<double()>& uniform) {
  const double area = static_cast<double>(height) * width;
  const double log_low = std::log(ratio.first), log_high = std::log(ratio.second);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase_area = area * (scale.first + (scale.second - scale.first) * uniform());
    const double aspect = std::exp(log_low + (log_high - log_low) * uniform());
    // torchvision's get_params: the height takes the ratio's square root as a factor.
    const int h = round_half_even(std::sqrt(erase_area * aspect));
    const int w = round_half_even(std::sqrt(erase_area / aspect));
    if (!(h < height && w < width)) continue;
    const int top = below(uniform(), height - h + 1);
    const int left = below(uniform(), width - w + 1);
    return {top, left, h, w, true};
  }
  return {0, 0, height, width, false};
}

RandomErasing::RandomErasing(double p, bool random_value, double value,
                             std::pair<double, double> scale, std::pair<double, double> ratio)
    : p_(p), random_value_(random_value), value_(value), scale_(scale), ratio_(ratio) {
  TLKIT_CHECK(p >= 0 && p <= 1, "RandomErasing probability ", p, " must be in [0, 1], e.g. 0.25");
  TLKIT_CHECK(scale.first >= 0 && scale.first <= scale.second && scale.second <= 1,
              "RandomErasing scale (", scale.first, ", ", scale.second,
              ") must satisfy 0 <= low <= high <= 1, e.g. (0.02, 0.33)");
  TLKIT_CHECK(ratio.first > 0 && ratio.first <= ratio.second, "RandomErasing ratio (", ratio.first,
              ", ", ratio.second, ") must satisfy 0 < low <= high, e.g. (0.3, 3.3)");
}

at::Tensor RandomErasing::operator()(at::Tensor image, std::mt19937_64& rng) const {
  TLKIT_CHECK(image.defined() && image.dim() == 3 && image.is_floating_point(),
              "RandomErasing takes a float C x H x W image, got ",
              image.defined() ? image.sizes() : at::IntArrayRef{},
              "; put it after ToNormalizedFloat");
  if (!(uniform01(rng) < p_)) return image;
  const auto channels = image.size(0);
  const auto box =
      random_erasing_box(static_cast<int>(image.size(1)), static_cast<int>(image.size(2)), scale_,
                         ratio_, [&rng] { return uniform01(rng); });
  if (!box.found || box.height == 0 || box.width == 0) return image;
  auto out = image.clone();
  auto region =
      out.slice(1, box.top, box.top + box.height).slice(2, box.left, box.left + box.width);
  if (random_value_) {
    auto values = normal_draws(static_cast<size_t>(channels * box.height * box.width), rng);
    region.copy_(at::from_blob(values.data(), {channels, box.height, box.width}, at::kFloat));
  } else {
    region.fill_(value_);
  }
  return out;
}

std::string RandomErasing::describe() const {
  return fmt::format("RandomErasing(p={:g}, scale=({:g}, {:g}), ratio=({:g}, {:g}), value={})", p_,
                     scale_.first, scale_.second, ratio_.first, ratio_.second,
                     random_value_ ? std::string("random") : fmt::format("{:g}", value_));
}

}  // namespace tlkit::data
