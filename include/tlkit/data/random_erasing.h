#pragma once
// Random erasing (Zhong et al. 2020, "Random Erasing Data Augmentation"), torchvision 0.14's
// transforms.RandomErasing on the normalised float C x H x W image: with probability p, a box of
// area fraction s ~ U(scale) and aspect ratio r = exp(U(log ratio)) gets h = round(sqrt(A s r)),
// w = round(sqrt(A s / r)) (Python's round, half to even); it is kept when h < H and w < W, at
// top ~ U{0..H-h}, left ~ U{0..W-w}, else drawn again, ten times at most (then nothing is erased).
// The box holds `value` 0, or per-pixel standard normal draws ("random"). Draws come from the
// generator given (the DataLoader's per-(seed, epoch, index) stream).

#include <functional>
#include <utility>

#include <tlkit/data/transforms.h>

namespace tlkit::data {

struct ErasingBox {
  int top = 0, left = 0, height = 0, width = 0;
  bool found = false;  // false: the ten tries failed, nothing is erased
};

// The box for a height x width image from uniform draws in [0, 1) taken in this order: per try
// the area draw, then the log-ratio draw; for the box kept, the top draw then the left draw (an
// integer in [0, n) is floor(u n)).
ErasingBox random_erasing_box(int height, int width, std::pair<double, double> scale,
                              std::pair<double, double> ratio,
                              const std::function<double()>& uniform);

class RandomErasing : public Transform {
 public:
  // random_value: per-pixel N(0, 1) draws in the box; else `value` fills it.
  explicit RandomErasing(double p, bool random_value = false, double value = 0,
                         std::pair<double, double> scale = {0.02, 0.33},
                         std::pair<double, double> ratio = {0.3, 3.3});
  at::Tensor operator()(at::Tensor image, std::mt19937_64& rng) const override;  // float CHW
  std::string describe() const override;

 private:
  double p_;
  bool random_value_;
  double value_;
  std::pair<double, double> scale_, ratio_;
};

}  // namespace tlkit::data
