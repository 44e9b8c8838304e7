#pragma once
// Batch mixing: mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization") and cutmix
// (Yun et al. 2019, "CutMix"), with the semantics of timm's Mixup in its 'batch' mode. Per batch:
//
//   with probability `prob` the batch is mixed (else lambda = 1, the batch unchanged);
//   both alphas > 0: cutmix with probability `switch_prob`, else mixup; one alpha > 0: that one;
//   lambda ~ Beta(alpha, alpha) of the chosen method;
//   mixup:  x <- lambda x + (1 - lambda) x.flip(0)
//   cutmix: cut_rat = sqrt(1 - lambda), cut_h = int(H cut_rat), cut_w = int(W cut_rat), a centre
//           cy ~ U{0..H-1}, cx ~ U{0..W-1}, the box [cy -+ cut_h / 2] x [cx -+ cut_w / 2] clipped
//           to the image is pasted from x.flip(0), and lambda <- 1 - box area / (H W);
//   targets: y = lambda t + (1 - lambda) t.flip(0), t the one-hot targets with label smoothing eps
//           (off = eps / C, on = 1 - eps + off), trained with soft_target_loss (train/loss.h).
//
// The draws are a function of (seed, epoch, batch index) alone (data/random.h's portable
// helpers): they do not depend on loader threads, and every rank of a data-parallel run draws the
// same lambda and box for the same step (each rank pairs the images of its own shard).

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace tlkit::train {

struct MixOptions {
  double mixup_alpha = 0;   // Beta(alpha, alpha) of mixup; 0 = no mixup
  double cutmix_alpha = 0;  // Beta(alpha, alpha) of cutmix; 0 = no cutmix
  double prob = 1;          // probability that a batch is mixed
  double switch_prob = 0.5;  // with both alphas > 0: probability of cutmix rather than mixup
  // Mixing in the first `off_epoch` epochs only (timm's mixup_off_epoch; epochs counted from 0,
  // so no mixing from epoch index off_epoch on); 0 = every epoch.
  std::int64_t off_epoch = 0;
  std::uint64_t seed = 0;  // the draws' stream

  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
  bool active(std::int64_t epoch) const {
    return enabled() && (off_epoch == 0 || epoch < off_epoch);
  }
  bool operator==(const MixOptions& other) const {
    return mixup_alpha == other.mixup_alpha && cutmix_alpha == other.cutmix_alpha &&
           prob == other.prob && switch_prob == other.switch_prob &&
           off_epoch == other.off_epoch && seed == other.seed;
  }
};

// Throws tlkit::Error naming the option (a negative or non-finite alpha, a probability outside
// [0, 1], a negative off epoch).
void check_mix_options(const MixOptions& options);

enum class MixKind { kNone, kMixup, kCutmix };

// One batch's draw: lambda (the share of each image's own target) and, for cutmix, the pasted box
// rows [y0, y1) and columns [x0, x1).
struct MixDraw {
  MixKind kind = MixKind::kNone;
  double lambda = 1;
  std::int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
};

// The draw of one batch of images `height` x `width` from `seed` (see mix_seed).
MixDraw draw_mix(const MixOptions& options, std::int64_t height, std::int64_t width,
                 std::uint64_t seed);
// The stream of batch `batch` (its index in the epoch, counting every micro-batch) of `epoch`.
std::uint64_t mix_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t batch);

// The cutmix box of `lambda` centred at (cy, cx), clipped to the image, and the corrected lambda.
MixDraw cutmix_box(double lambda, std::int64_t height, std::int64_t width, std::int64_t cy,
                   std::int64_t cx);

// The mixed inputs (a new tensor; `inputs` [B, ...] is left alone). Cutmix needs [B, C, H, W].
at::Tensor mix_inputs(const at::Tensor& inputs, const MixDraw& draw);

// Soft targets [B, num_classes] (float64): lambda t + (1 - lambda) t.flip(0) with
// t the smoothed one-hot of `targets` [B].
at::Tensor mix_targets(const at::Tensor& targets, std::int64_t num_classes, double smoothing,
                       double lambda);

// What the trainer trains on: the mixed inputs, their soft targets, and the target with the
// larger share (each image's own class when lambda >= 0.5, its partner's otherwise), against
// which training accuracy is counted under mixing.
struct MixedBatch {
  at::Tensor inputs, soft_targets, dominant_targets;
  double lambda = 1;
};
MixedBatch mix_batch(const at::Tensor& inputs, const at::Tensor& targets, const MixDraw& draw,
                     std::int64_t num_classes, double smoothing);

}  // namespace tlkit::train
