#include <tlkit/train/mix.h>

#include <algorithm>
#include <cmath>
#include <random>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/data/random.h>

namespace tlkit::train {
namespace {

constexpr double kPi = 3.141592653589793238462643383279502884;

// Uniform in (0, 1]: safe under log.
double open_uniform(std::mt19937_64& rng) { return 1.0 - data::uniform01(rng); }

// Standard normal (Box-Muller, one of the pair).
double normal(std::mt19937_64& rng) {
  const double u1 = open_uniform(rng), u2 = data::uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

// log of a Gamma(shape, 1) draw. Shape >= 1: Marsaglia and Tsang (2000), "A Simple Method for
// Generating Gamma Variables"; shape < 1: Gamma(shape + 1) x U^(1 / shape), in logs.
double log_gamma_draw(std::mt19937_64& rng, double shape) {
  if (shape < 1) return log_gamma_draw(rng, shape + 1) + std::log(open_uniform(rng)) / shape;
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = normal(rng);
    const double t = 1.0 + c * x;
    if (t <= 0) continue;
    const double v = t * t * t;
    if (std::log(open_uniform(rng)) < 0.5 * x * x + d - d * v + d * std::log(v))
      return std::log(d) + std::log(v);
  }
}

// Beta(alpha, alpha) = G1 / (G1 + G2) = 1 / (1 + exp(log G2 - log G1)).
double symmetric_beta(std::mt19937_64& rng, double alpha) {
  const double log_a = log_gamma_draw(rng, alpha);
  const double log_b = log_gamma_draw(rng, alpha);
  return 1.0 / (1.0 + std::exp(log_b - log_a));
}

}  // namespace

void check_mix_options(const MixOptions& options) {
  TLKIT_CHECK(std::isfinite(options.mixup_alpha) && options.mixup_alpha >= 0,
              "mixup alpha must be >= 0 (0 = off, 0.2 is usual), got ", options.mixup_alpha);
  TLKIT_CHECK(std::isfinite(options.cutmix_alpha) && options.cutmix_alpha >= 0,
              "cutmix alpha must be >= 0 (0 = off, 1 is usual), got ", options.cutmix_alpha);
  TLKIT_CHECK(options.prob >= 0 && options.prob <= 1,
              "the mix probability must be in [0, 1], got ", options.prob);
  TLKIT_CHECK(options.switch_prob >= 0 && options.switch_prob <= 1,
              "the mix switch probability must be in [0, 1], got ", options.switch_prob);
  TLKIT_CHECK(options.off_epoch >= 0, "the mix off epoch must be >= 0 (0 = never off), got ",
              options.off_epoch);
}

std::uint64_t mix_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t batch) {
  return data::derive_seed(data::derive_seed(seed, 0x6d1c5),  // batch mixing's own stream
                           static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(batch));
}

MixDraw cutmix_box(double lambda, std::int64_t height, std::int64_t width, std::int64_t cy,
                   std::int64_t cx) {
  const double cut_rat = std::sqrt(1.0 - lambda);
  const auto cut_h = static_cast<std::int64_t>(static_cast<double>(height) * cut_rat);
  const auto cut_w = static_cast<std::int64_t>(static_cast<double>(width) * cut_rat);
  MixDraw draw;
  draw.kind = MixKind::kCutmix;
  draw.y0 = std::clamp<std::int64_t>(cy - cut_h / 2, 0, height);
  draw.y1 = std::clamp<std::int64_t>(cy + cut_h / 2, 0, height);
  draw.x0 = std::clamp<std::int64_t>(cx - cut_w / 2, 0, width);
  draw.x1 = std::clamp<std::int64_t>(cx + cut_w / 2, 0, width);
  // lambda corrected to the box actually pasted (clipped at the borders, halves rounded down).
  draw.lambda = 1.0 - static_cast<double>((draw.y1 - draw.y0) * (draw.x1 - draw.x0)) /
                          static_cast<double>(height * width);
  return draw;
}

MixDraw draw_mix(const MixOptions& options, std::int64_t height, std::int64_t width,
                 std::uint64_t seed) {
  MixDraw draw;
  if (!options.enabled()) return draw;
  std::mt19937_64 rng(seed);
  if (data::uniform01(rng) >= options.prob) return draw;
  bool cutmix = options.mixup_alpha <= 0;
  if (options.mixup_alpha > 0 && options.cutmix_alpha > 0)
    cutmix = data::uniform01(rng) < options.switch_prob;
  const double lambda =
      symmetric_beta(rng, cutmix ? options.cutmix_alpha : options.mixup_alpha);
  if (!cutmix) {
    draw.kind = MixKind::kMixup;
    draw.lambda = lambda;
    return draw;
  }
  TLKIT_CHECK(height > 0 && width > 0,
              "cutmix needs images [batch, channels, height, width]; these inputs have none");
  const auto cy = static_cast<std::int64_t>(data::uniform_below(rng, height));
  const auto cx = static_cast<std::int64_t>(data::uniform_below(rng, width));
  return cutmix_box(lambda, height, width, cy, cx);
}

at::Tensor mix_inputs(const at::Tensor& inputs, const MixDraw& draw) {
  if (draw.kind == MixKind::kNone || draw.lambda == 1) return inputs;
  const auto partners = inputs.flip(0);
  if (draw.kind == MixKind::kMixup) return inputs * draw.lambda + partners * (1 - draw.lambda);
  TLKIT_CHECK(inputs.dim() == 4, "cutmix needs images [batch, channels, height, width], got ",
              inputs.dim(), " dimensions");
  auto mixed = inputs.clone();
  using at::indexing::Slice;
  const std::initializer_list<at::indexing::TensorIndex> box = {
      Slice(), Slice(), Slice(draw.y0, draw.y1), Slice(draw.x0, draw.x1)};
  mixed.index(box).copy_(partners.index(box));
  return mixed;
}

at::Tensor mix_targets(const at::Tensor& targets, std::int64_t num_classes, double smoothing,
                       double lambda) {
  const double off = smoothing / static_cast<double>(num_classes);
  const double on = 1.0 - smoothing + off;
  const auto labels = targets.to(at::kLong).view({-1, 1});
  auto one_hot = at::full({labels.size(0), num_classes}, off,
                          at::TensorOptions().dtype(at::kDouble).device(targets.device()));
  one_hot.scatter_(1, labels, on);
  if (lambda == 1) return one_hot;
  return one_hot * lambda + one_hot.flip(0) * (1 - lambda);
}

MixedBatch mix_batch(const at::Tensor& inputs, const at::Tensor& targets, const MixDraw& draw,
                     std::int64_t num_classes, double smoothing) {
  MixedBatch batch;
  batch.lambda = draw.lambda;
  batch.inputs = mix_inputs(inputs, draw);
  batch.soft_targets = mix_targets(targets, num_classes, smoothing, draw.lambda);
  batch.dominant_targets = draw.lambda >= 0.5 ? targets : targets.flip(0);
  return batch;
}

}  // namespace tlkit::train
