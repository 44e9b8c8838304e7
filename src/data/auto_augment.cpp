// TrivialAugmentWide and RandAugment: torchvision 0.14's autoaugment ops restated with the ATen
// operations of transforms/functional_tensor.py (on a contiguous C x H x W copy, as torchvision
// sees the image), so the results match its tensor path.
#include <tlkit/data/auto_augment.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>
#include <tlkit/data/random.h>

namespace tlkit::data {
namespace {

constexpr std::array<const char*, kAugmentOpCount> kOpNames{
    "Identity", "ShearX",   "ShearY",    "TranslateX", "TranslateY", "Rotate",       "Brightness",
    "Color",    "Contrast", "Sharpness", "Posterize",  "Solarize",   "AutoContrast", "Equalize"};

// Python's math.radians / math.degrees (x * (pi / 180), x * (180 / pi)).
constexpr double kPi = 3.14159265358979323846;
double radians(double x) { return x * (kPi / 180.0); }
double degrees(double x) { return x * (180.0 / kPi); }

// torchvision functional._get_inverse_affine_matrix(center, angle, translate, scale=1, shear):
// the output-to-input map M^-1 = C RSS^-1 C^-1 T^-1, in degrees, as Python computes it.
std::array<double, 6> inverse_affine(double cx, double cy, double angle, double tx, double ty,
                                     double shear_x, double shear_y) {
  const double rot = radians(angle), sx = radians(shear_x), sy = radians(shear_y);
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  std::array<double, 6> m{d, -b, 0.0, -c, a, 0.0};
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

// functional_tensor.affine / rotate (expand=False) with nearest sampling and no fill (zeros):
// _gen_affine_grid, grid_sample, round, cast back. chw: uint8 C x H x W, contiguous.
at::Tensor affine_nearest(const at::Tensor& chw, const std::array<double, 6>& matrix) {
  const auto h = chw.size(1), w = chw.size(2);
  const auto theta = at::tensor(std::vector<double>(matrix.begin(), matrix.end()), at::kDouble)
                         .to(at::kFloat)
                         .reshape({1, 2, 3});
  const double d = 0.5;
  auto base = at::empty({1, h, w, 3}, at::kFloat);
  base.select(3, 0).copy_(
      at::linspace(-static_cast<double>(w) * 0.5 + d, static_cast<double>(w) * 0.5 + d - 1, w));
  base.select(3, 1).copy_(
      at::linspace(-static_cast<double>(h) * 0.5 + d, static_cast<double>(h) * 0.5 + d - 1, h)
          .unsqueeze_(-1));
  base.select(3, 2).fill_(1);
  const auto half = at::tensor(std::vector<float>{static_cast<float>(0.5 * static_cast<double>(w)),
                                                  static_cast<float>(0.5 * static_cast<double>(h))},
                               at::kFloat);
  const auto grid = base.view({1, h * w, 3}).bmm(theta.transpose(1, 2) / half).view({1, h, w, 2});
  const auto sampled = at::grid_sampler(chw.to(at::kFloat).unsqueeze(0), grid,
                                        /*interpolation_mode=nearest*/ 1,
                                        /*padding_mode=zeros*/ 0, /*align_corners=*/false);
  return sampled.squeeze(0).round().to(at::kByte);
}

// functional_tensor._blend: (ratio img1 + (1 - ratio) img2) clamped to [0, 255], truncated.
at::Tensor blend(const at::Tensor& img1, const at::Tensor& img2, double ratio) {
  return img1.mul(ratio).add(img2.mul(1.0 - ratio)).clamp(0, 255).to(at::kByte);
}

// functional_tensor.rgb_to_grayscale: (0.2989 r + 0.587 g + 0.114 b) truncated to uint8, 1 x H x W.
at::Tensor grayscale(const at::Tensor& chw) {
  if (chw.size(0) != 3) return chw.clone();
  const auto channels = chw.unbind(0);
  return (channels[0].mul(0.2989).add(channels[1].mul(0.587)).add(channels[2].mul(0.114)))
      .to(chw.scalar_type())
      .unsqueeze(0);
}

at::Tensor adjust_contrast(const at::Tensor& chw, double factor) {
  const auto source = chw.size(0) == 3 ? grayscale(chw) : chw;
  const auto mean = at::mean(source.to(at::kFloat), {-3, -2, -1}, /*keepdim=*/true);
  return blend(chw, mean, factor);
}

// functional_tensor.adjust_sharpness: a blend with the 3 x 3 smoothing (1 1 1 / 1 5 1 / 1 1 1)/13
// of the inner pixels; the border keeps its values.
at::Tensor adjust_sharpness(const at::Tensor& chw, double factor) {
  if (chw.size(1) <= 2 || chw.size(2) <= 2) return chw;
  auto kernel = at::ones({3, 3}, at::kFloat);
  kernel[1][1] = 5.0;
  kernel /= kernel.sum();
  const auto channels = chw.size(0);
  const auto weight = kernel.expand({channels, 1, 3, 3});
  const std::vector<std::int64_t> ones{1, 1}, zeros{0, 0};
  const auto smoothed = at::conv2d(chw.unsqueeze(0).to(at::kFloat), weight,
                                   c10::optional<at::Tensor>(), ones, zeros, ones, channels)
                            .squeeze(0)
                            .round()
                            .to(at::kByte);
  auto degenerate = chw.clone();
  degenerate.slice(1, 1, -1).slice(2, 1, -1).copy_(smoothed);
  return blend(chw, degenerate, factor);
}

at::Tensor posterize(const at::Tensor& chw, int bits) {
  // torchvision's mask -int(2 ** (8 - bits)), i.e. the top `bits` bits.
  const std::int64_t mask = -(std::int64_t{1} << (8 - bits));
  return at::bitwise_and(chw, mask);
}

at::Tensor solarize(const at::Tensor& chw, double threshold) {
  return at::where(chw.ge(threshold), at::rsub(chw, 255), chw);
}

// functional_tensor.autocontrast: each channel stretched to [0, 255]; a flat channel is kept.
at::Tensor autocontrast(const at::Tensor& chw) {
  auto minimum = chw.amin({-2, -1}, true).to(at::kFloat);
  const auto maximum = chw.amax({-2, -1}, true).to(at::kFloat);
  auto scale = (maximum - minimum).reciprocal().mul(255.0);  // Python's 255.0 / tensor
  const auto flat = at::isfinite(scale).logical_not();
  minimum.masked_fill_(flat, 0);
  scale.masked_fill_(flat, 1);
  return (chw - minimum).mul(scale).clamp(0, 255).to(chw.scalar_type());
}

// functional_tensor._scale_channel (PIL's ImageOps.equalize): a lookup table from the cumulative
// histogram in steps of (pixels outside the last non-empty bin) / 255.
void equalize_channel(std::uint8_t* pixels, std::int64_t count) {
  std::array<std::int64_t, 256> histogram{};
  for (std::int64_t i = 0; i < count; ++i) ++histogram[pixels[i]];
  std::int64_t last = 0, total = 0;
  for (const auto n : histogram) {
    if (n == 0) continue;
    total += n;
    last = n;
  }
  const std::int64_t step = (total - last) / 255;
  if (step == 0) return;
  std::array<std::uint8_t, 256> lut{};
  std::int64_t cumulative = 0;
  for (int v = 1; v < 256; ++v) {
    cumulative += histogram[static_cast<size_t>(v - 1)];
    lut[static_cast<size_t>(v)] =
        static_cast<std::uint8_t>(std::min<std::int64_t>(255, (cumulative + step / 2) / step));
  }
  for (std::int64_t i = 0; i < count; ++i) pixels[i] = lut[pixels[i]];
}

at::Tensor equalize(const at::Tensor& chw) {
  auto out = chw.clone();
  const auto plane = chw.size(1) * chw.size(2);
  auto* data = out.data_ptr<std::uint8_t>();
  for (std::int64_t c = 0; c < chw.size(0); ++c) equalize_channel(data + c * plane, plane);
  return out;
}

// The op on a contiguous uint8 C x H x W image (autoaugment._apply_op).
at::Tensor apply_on_chw(const at::Tensor& chw, AugmentOp op, double magnitude) {
  const double h = static_cast<double>(chw.size(1)), w = static_cast<double>(chw.size(2));
  switch (op) {
    case AugmentOp::kIdentity:
      return chw;
    case AugmentOp::kShearX:  // about the top-left corner (center=[0, 0])
      return affine_nearest(chw, inverse_affine(-w * 0.5, -h * 0.5, 0.0, 0.0, 0.0,
                                                degrees(std::atan(magnitude)), 0.0));
    case AugmentOp::kShearY:
      return affine_nearest(chw, inverse_affine(-w * 0.5, -h * 0.5, 0.0, 0.0, 0.0, 0.0,
                                                degrees(std::atan(magnitude))));
    case AugmentOp::kTranslateX:  // whole pixels: int(magnitude)
      return affine_nearest(
          chw, inverse_affine(0.0, 0.0, 0.0, static_cast<double>(static_cast<int>(magnitude)), 0.0,
                              0.0, 0.0));
    case AugmentOp::kTranslateY:
      return affine_nearest(
          chw, inverse_affine(0.0, 0.0, 0.0, 0.0, static_cast<double>(static_cast<int>(magnitude)),
                              0.0, 0.0));
    case AugmentOp::kRotate:  // counter-clockwise about the centre
      return affine_nearest(chw, inverse_affine(0.0, 0.0, -magnitude, 0.0, 0.0, 0.0, 0.0));
    case AugmentOp::kBrightness:
      return blend(chw, at::zeros_like(chw), 1.0 + magnitude);
    case AugmentOp::kColor:
      return chw.size(0) == 1 ? chw : blend(chw, grayscale(chw), 1.0 + magnitude);
    case AugmentOp::kContrast:
      return adjust_contrast(chw, 1.0 + magnitude);
    case AugmentOp::kSharpness:
      return adjust_sharpness(chw, 1.0 + magnitude);
    case AugmentOp::kPosterize:
      return posterize(chw, static_cast<int>(magnitude));
    case AugmentOp::kSolarize:
      return solarize(chw, magnitude);
    case AugmentOp::kAutoContrast:
      return autocontrast(chw);
    case AugmentOp::kEqualize:
      return equalize(chw);
  }
  return chw;
}

void check_image(const at::Tensor& image, const char* what) {
  TLKIT_CHECK(image.defined() && image.dim() == 3 && image.scalar_type() == at::kByte &&
                  (image.size(2) == 1 || image.size(2) == 3),
              what, " takes a uint8 H x W x C image with 1 or 3 channels, got ",
              image.defined() ? image.sizes() : at::IntArrayRef{},
              "; put it before ToNormalizedFloat");
}

// One float32 table entry as a double, as float(tensor[i].item()).
std::vector<double> values_of(const at::Tensor& table) {
  const auto t = table.to(at::kDouble).contiguous();
  return {t.data_ptr<double>(), t.data_ptr<double>() + t.numel()};
}

// `8 - (arange(bins) / ((bins - 1) / divisions)).round().int()`.
std::vector<double> posterize_bits(int bins, double divisions) {
  const auto bits =
      at::rsub((at::arange(bins, at::kLong) / ((bins - 1) / divisions)).round().to(at::kInt), 8);
  return values_of(bits);
}

std::vector<double> linspace(double start, double end, int bins) {
  return values_of(at::linspace(start, end, bins, at::kFloat));
}

OpMagnitudes magnitudes(AugmentOp op, int bins, double shear, double translate_x,
                        double translate_y, double rotate, double colour, double posterize_divs) {
  switch (op) {
    case AugmentOp::kShearX:
    case AugmentOp::kShearY:
      return {linspace(0.0, shear, bins), true};
    case AugmentOp::kTranslateX:
      return {linspace(0.0, translate_x, bins), true};
    case AugmentOp::kTranslateY:
      return {linspace(0.0, translate_y, bins), true};
    case AugmentOp::kRotate:
      return {linspace(0.0, rotate, bins), true};
    case AugmentOp::kBrightness:
    case AugmentOp::kColor:
    case AugmentOp::kContrast:
    case AugmentOp::kSharpness:
      return {linspace(0.0, colour, bins), true};
    case AugmentOp::kPosterize:
      return {posterize_bits(bins, posterize_divs), false};
    case AugmentOp::kSolarize:
      return {linspace(255.0, 0.0, bins), false};
    default:
      return {};
  }
}

// The signed magnitude of a table entry: negative with probability 1/2 for signed ops.
double signed_magnitude(const OpMagnitudes& m, size_t bin, std::mt19937_64& rng) {
  if (m.values.empty()) return 0.0;
  const double value = m.values[bin];
  return m.is_signed && uniform01(rng) < 0.5 ? -value : value;
}

AugmentOp draw_op(std::mt19937_64& rng) {
  return static_cast<AugmentOp>(uniform_below(rng, kAugmentOpCount));
}

void check_bins(int bins) {
  TLKIT_CHECK(bins >= 2, "an augmentation needs at least 2 magnitude bins, got ", bins);
}

}  // namespace

const char* augment_op_name(AugmentOp op) { return kOpNames[static_cast<size_t>(op)]; }

AugmentOp augment_op_from_name(const std::string& name) {
  for (size_t i = 0; i < kOpNames.size(); ++i)
    if (name == kOpNames[i]) return static_cast<AugmentOp>(i);
  fail("unknown augmentation op '", name, "'");
}

at::Tensor apply_augment_op(const at::Tensor& image, AugmentOp op, double magnitude) {
  check_image(image, augment_op_name(op));
  if (op == AugmentOp::kIdentity) return image;
  const auto chw = image.permute({2, 0, 1}).contiguous();
  return apply_on_chw(chw, op, magnitude).permute({1, 2, 0}).contiguous();
}

OpMagnitudes rand_augment_magnitudes(AugmentOp op, int bins, std::int64_t height,
                                     std::int64_t width) {
  check_bins(bins);
  return magnitudes(op, bins, 0.3, 150.0 / 331.0 * static_cast<double>(width),
                    150.0 / 331.0 * static_cast<double>(height), 30.0, 0.9, 4);
}

OpMagnitudes trivial_augment_magnitudes(AugmentOp op, int bins) {
  check_bins(bins);
  return magnitudes(op, bins, 0.99, 32.0, 32.0, 135.0, 0.99, 6);
}

std::string AutoAugmentSpec::text() const {
  return policy == "rand" ? fmt::format("rand:{},{}", num_ops, magnitude) : policy;
}

AutoAugmentSpec parse_auto_augment(const std::string& spec) {
  AutoAugmentSpec out;
  if (spec == "none" || spec == "trivial") {
    out.policy = spec;
    return out;
  }
  const std::string usage =
      "; use none, trivial (TrivialAugmentWide) or rand:N,M (RandAugment: N ops at magnitude M "
      "of 0-30, e.g. rand:2,9)";
  TLKIT_CHECK(spec.rfind("rand:", 0) == 0, "unknown augmentation '", spec, "'", usage);
  const auto numbers = split_trimmed(spec.substr(5), ',');
  TLKIT_CHECK(numbers.size() == 2, "augmentation '", spec, "' needs two numbers N,M", usage);
  int parsed[2] = {0, 0};
  for (size_t i = 0; i < 2; ++i) {
    char* end = nullptr;
    const long value = std::strtol(numbers[i].c_str(), &end, 10);
    TLKIT_CHECK(!numbers[i].empty() && end == numbers[i].c_str() + numbers[i].size(),
                "augmentation '", spec, "': '", numbers[i], "' is not a whole number", usage);
    TLKIT_CHECK(value >= 0 && value <= 1000, "augmentation '", spec, "': ", value,
                " is out of range", usage);
    parsed[i] = static_cast<int>(value);
  }
  TLKIT_CHECK(parsed[0] >= 1 && parsed[0] <= 10, "augmentation '", spec,
              "': N (ops per image) must be in [1, 10], got ", parsed[0]);
  TLKIT_CHECK(parsed[1] < kMagnitudeBins, "augmentation '", spec,
              "': M (the magnitude bin) must be in [0, ", kMagnitudeBins - 1, "], got ", parsed[1]);
  out.policy = "rand";
  out.num_ops = parsed[0];
  out.magnitude = parsed[1];
  return out;
}

TrivialAugmentWide::TrivialAugmentWide(int bins) : bins_(bins) {
  check_bins(bins);
  for (int op = 0; op < kAugmentOpCount; ++op)
    space_.push_back(trivial_augment_magnitudes(static_cast<AugmentOp>(op), bins));
}

at::Tensor TrivialAugmentWide::operator()(at::Tensor image, std::mt19937_64& rng) const {
  check_image(image, "TrivialAugmentWide");
  const auto op = draw_op(rng);
  const auto& table = space_[static_cast<size_t>(op)];
  const auto bin = table.values.empty()
                       ? size_t{0}
                       : static_cast<size_t>(uniform_below(rng, table.values.size()));
  return apply_augment_op(image, op, signed_magnitude(table, bin, rng));
}

RandAugment::RandAugment(int num_ops, int magnitude, int bins)
    : num_ops_(num_ops), magnitude_(magnitude), bins_(bins) {
  check_bins(bins);
  TLKIT_CHECK(num_ops >= 0, "RandAugment takes N >= 0 ops, got ", num_ops);
  TLKIT_CHECK(magnitude >= 0 && magnitude < bins, "RandAugment magnitude ", magnitude,
              " must be a bin in [0, ", bins - 1, "]");
}

at::Tensor RandAugment::operator()(at::Tensor image, std::mt19937_64& rng) const {
  check_image(image, "RandAugment");
  const auto height = image.size(0), width = image.size(1);
  for (int i = 0; i < num_ops_; ++i) {
    const auto op = draw_op(rng);
    const auto table = rand_augment_magnitudes(op, bins_, height, width);
    image =
        apply_augment_op(image, op, signed_magnitude(table, static_cast<size_t>(magnitude_), rng));
  }
  return image;
}

std::string RandAugment::describe() const {
  return fmt::format("RandAugment(num_ops={}, magnitude={}, bins={})", num_ops_, magnitude_, bins_);
}

std::shared_ptr<Transform> auto_augment(const AutoAugmentSpec& spec) {
  if (spec.policy == "trivial") return std::make_shared<TrivialAugmentWide>();
  if (spec.policy == "rand") return std::make_shared<RandAugment>(spec.num_ops, spec.magnitude);
  TLKIT_CHECK(spec.policy == "none", "unknown augmentation policy '", spec.policy, "'");
  return nullptr;
}

}  // namespace tlkit::data
