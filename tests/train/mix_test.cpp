// Batch mixing (train/mix.h) and the soft-target loss (train/loss.h): on fixed draws (lambda, box
// centre) the mixed batch and soft targets equal a Python re-statement of timm's Mixup formulas,
// the loss equals torch's F.cross_entropy with probability targets (label smoothing and class
// weights) in float64, the draws are a function of (seed, epoch, batch) with Beta(alpha, alpha)'s
// moments, and the trainer trains on the mixed batches.
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/train/loss.h>
#include <tlkit/train/mix.h>
#include <tlkit/train/trainer.h>

#include "support/test_support.h"
#include "train/train_fixtures.h"

namespace tlkit::train {
namespace {

// timm's Mixup ('batch' mode) restated: the box of cutmix and lambda corrected to it, the mixed
// batch, the smoothed one-hot targets mixed with the flipped batch's, and the soft-target loss as
// torch's cross_entropy with probability targets (its label_smoothing and weight).
constexpr const char* kReference = R"PY(
import math, sys
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
gen = torch.Generator().manual_seed(20240611)
B, C = 6, 5
targets = torch.tensor([0, 3, 1, 4, 3, 2])
weights = torch.tensor([0.5, 2.0, 1.0, 3.5, 0.25], dtype=torch.float64)

def one_hot(t, smoothing):
    off = smoothing / C
    on = 1.0 - smoothing + off
    return torch.full((t.size(0), C), off, dtype=torch.float64).scatter_(1, t.view(-1, 1), on)

def box(lam, H, W, cy, cx):
    cut_rat = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(H * cut_rat), int(W * cut_rat)
    clip = lambda v, hi: min(max(v, 0), hi)
    y0, y1 = clip(cy - cut_h // 2, H), clip(cy + cut_h // 2, H)
    x0, x1 = clip(cx - cut_w // 2, W), clip(cx + cut_w // 2, W)
    return y0, y1, x0, x1, 1.0 - (y1 - y0) * (x1 - x0) / float(H * W)

# name, kind, lambda drawn, centre (cy, cx), H, W, smoothing
cases = [("mixup", "mixup", 0.3, 0, 0, 4, 4, 0.1),
         ("mixup_high", "mixup", 0.85, 0, 0, 3, 5, 0.0),
         ("cutmix", "cutmix", 0.4, 3, 4, 8, 10, 0.1),
         ("cutmix_corner", "cutmix", 0.2, 0, 9, 8, 10, 0.0),
         ("cutmix_empty", "cutmix", 0.95, 4, 4, 8, 10, 0.2),
         ("cutmix_odd", "cutmix", 0.05, 6, 0, 7, 5, 0.3)]
data = {"case_names": ",".join(c[0] for c in cases)}
for name, kind, lam, cy, cx, H, W, eps in cases:
    x = torch.randn(B, 3, H, W, generator=gen, dtype=torch.float64)
    logits = torch.randn(B, C, generator=gen, dtype=torch.float64) * 2
    if kind == "mixup":
        mixed = x * lam + x.flip(0) * (1.0 - lam)
        y0 = y1 = x0 = x1 = 0
    else:
        y0, y1, x0, x1, lam = box(lam, H, W, cy, cx)
        mixed = x.clone()
        mixed[:, :, y0:y1, x0:x1] = x.flip(0)[:, :, y0:y1, x0:x1]
    soft = one_hot(targets, eps) * lam + one_hot(targets.flip(0), eps) * (1.0 - lam)
    hard = one_hot(targets, 0.0) * lam + one_hot(targets.flip(0), 0.0) * (1.0 - lam)
    out = {"x": x, "logits": logits, "mixed": mixed, "soft": soft, "lambda": lam,
           "box": torch.tensor([y0, y1, x0, x1]), "smoothing": eps}
    for tag, w in (("plain", None), ("weighted", weights)):
        z = logits.clone().requires_grad_()
        loss = F.cross_entropy(z, hard, weight=w, label_smoothing=eps)
        loss.backward()
        ww = torch.ones(C, dtype=torch.float64) if w is None else w
        manual = (-soft * ww * F.log_softmax(logits, dim=-1)).sum(-1).mean()
        out.update({tag + "_loss": loss.item(), tag + "_manual": manual.item(),
                    tag + "_grad": z.grad.clone()})
    for key, value in out.items():
        data["case/%s/%s" % (name, key)] = value
data["targets"] = targets
data["weights"] = weights
torch.save(data, sys.argv[1])
)PY";

struct Reference {
  c10::impl::GenericDict dict{c10::StringType::get(), c10::AnyType::get()};
  std::string skip;  // why there is none
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    if (test::run_command(test::torch_python() + " -c 'import torch'").exit_code != 0) {
      r.skip = test::torch_python() + " has no torch";
      return r;
    }
    static test::TempDir dir;
    write_file_atomic(dir / "mix_reference.py", kReference);
    const auto result = test::run_command(test::torch_python() + " " +
                                          test::quoted(dir / "mix_reference.py") + " " +
                                          test::quoted(dir / "mix_reference.pt"));
    if (result.exit_code != 0) throw Error("the Python reference failed: " + result.output);
    std::ifstream in(dir / "mix_reference.pt", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    r.dict = torch::pickle_load(bytes).toGenericDict();
    return r;
  }();
  return ref;
}

#define SKIP_WITHOUT_REFERENCE() \
  if (!reference().skip.empty()) GTEST_SKIP() << reference().skip

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  std::stringstream list(reference().dict.at("case_names").toStringRef());
  for (std::string name; std::getline(list, name, ',');) names.push_back(name);
  return names;
}

c10::IValue at_case(const std::string& name, const std::string& key) {
  return reference().dict.at("case/" + name + "/" + key);
}

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Float64 against torch's float64: the same arithmetic up to summation order.
constexpr double kTolerance = 1e-9;

// The draws of each case, fixed, as the trainer would get them from draw_mix.
MixDraw fixed_draw(const std::string& name, std::int64_t height, std::int64_t width) {
  const std::map<std::string, std::tuple<double, std::int64_t, std::int64_t>> drawn = {
      {"mixup", {0.3, 0, 0}},         {"mixup_high", {0.85, 0, 0}},
      {"cutmix", {0.4, 3, 4}},        {"cutmix_corner", {0.2, 0, 9}},
      {"cutmix_empty", {0.95, 4, 4}}, {"cutmix_odd", {0.05, 6, 0}}};
  const auto [lambda, cy, cx] = drawn.at(name);
  if (name.rfind("mixup", 0) == 0) return MixDraw{MixKind::kMixup, lambda};
  return cutmix_box(lambda, height, width, cy, cx);
}

TEST(Mix, MixedBatchAndSoftTargetsMatchTheFormulasOnFixedDraws) {
  SKIP_WITHOUT_REFERENCE();
  const auto names = case_names();
  ASSERT_EQ(names.size(), 6u);
  const auto targets = reference().dict.at("targets").toTensor();
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const auto x = at_case(name, "x").toTensor();
    const auto original = x.clone();
    const auto draw = fixed_draw(name, x.size(2), x.size(3));
    EXPECT_DOUBLE_EQ(draw.lambda, at_case(name, "lambda").toDouble());
    if (draw.kind == MixKind::kCutmix) {
      const auto box = at_case(name, "box").toTensor();
      EXPECT_EQ(draw.y0, box[0].item<std::int64_t>());
      EXPECT_EQ(draw.y1, box[1].item<std::int64_t>());
      EXPECT_EQ(draw.x0, box[2].item<std::int64_t>());
      EXPECT_EQ(draw.x1, box[3].item<std::int64_t>());
    }
    const auto batch = mix_batch(x, targets, draw, 5, at_case(name, "smoothing").toDouble());
    EXPECT_LT(max_difference(batch.inputs, at_case(name, "mixed").toTensor()), 1e-12);
    EXPECT_LT(max_difference(batch.soft_targets, at_case(name, "soft").toTensor()), 1e-12);
    // The input is left alone (the loader may reuse its buffer).
    EXPECT_TRUE(x.equal(original));
  }
  // The negative control: a wrong draw gives a different batch, so the comparison can fail.
  const auto x = at_case("cutmix", "x").toTensor();
  const auto shifted = mix_inputs(x, cutmix_box(0.4, 8, 10, 3, 5));
  EXPECT_GT(max_difference(shifted, at_case("cutmix", "mixed").toTensor()), 0.1);
}

TEST(Mix, SoftTargetLossMatchesTorchCrossEntropyWithWeightsAndSmoothing) {
  SKIP_WITHOUT_REFERENCE();
  const auto targets = reference().dict.at("targets").toTensor();
  const auto w = reference().dict.at("weights").toTensor();
  const std::vector<double> weights(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
  for (const auto& name : case_names()) {
    for (const std::string tag : {"plain", "weighted"}) {
      SCOPED_TRACE(name + " " + tag);
      const auto soft = mix_targets(targets, 5, at_case(name, "smoothing").toDouble(),
                                    at_case(name, "lambda").toDouble());
      auto logits = at_case(name, "logits").toTensor().clone().requires_grad_();
      const auto loss =
          soft_target_loss(logits, soft, tag == "weighted" ? weights : std::vector<double>{});
      ASSERT_EQ(loss.scalar_type(), at::kDouble);
      EXPECT_NEAR(loss.item<double>(), at_case(name, tag + "_loss").toDouble(), kTolerance);
      EXPECT_NEAR(loss.item<double>(), at_case(name, tag + "_manual").toDouble(), kTolerance);
      loss.backward();
      EXPECT_LT(max_difference(logits.grad(), at_case(name, tag + "_grad").toTensor()), kTolerance);
    }
  }
  // With lambda 1 and no smoothing the soft-target loss is plain cross-entropy; with weights it
  // divides by the batch, not by the summed weights of the targets (torch's rule for probability
  // targets), so it differs from the class-index loss by that factor.
  const auto logits = at_case("mixup", "logits").toTensor();
  const auto one_hot = mix_targets(targets, 5, 0, 1);
  EXPECT_NEAR(soft_target_loss(logits, one_hot, std::vector<double>{}).item<double>(),
              classification_loss(logits, targets, {}).item<double>(), kTolerance);
  const double summed = w.index_select(0, targets).sum().item<double>();
  EXPECT_NEAR(soft_target_loss(logits, one_hot, weights).item<double>(),
              classification_loss(logits, targets, LossOptions{0, weights}).item<double>() *
                  summed / 6,
              kTolerance);
}

TEST(Mix, DrawsDependOnSeedEpochAndBatchAlone) {
  MixOptions options;
  options.mixup_alpha = 0.2;
  options.cutmix_alpha = 1.0;
  options.seed = 11;
  const auto draw = [&](std::int64_t epoch, std::int64_t batch, std::uint64_t seed = 11) {
    return draw_mix(options, 32, 24, mix_seed(seed, epoch, batch));
  };
  const auto same = [](const MixDraw& a, const MixDraw& b) {
    return a.kind == b.kind && a.lambda == b.lambda && a.y0 == b.y0 && a.y1 == b.y1 &&
           a.x0 == b.x0 && a.x1 == b.x1;
  };
  // Another epoch, seed or batch draws differently (a cutmix box may repeat by chance: rarely).
  int kinds[3] = {0, 0, 0}, repeats = 0;
  for (std::int64_t batch = 0; batch < 200; ++batch) {
    const auto a = draw(3, batch);
    EXPECT_TRUE(same(a, draw(3, batch))) << batch;
    repeats += same(a, draw(4, batch)) + same(a, draw(3, batch, 12)) + same(a, draw(3, batch + 1));
    ++kinds[static_cast<int>(a.kind)];
    EXPECT_GE(a.lambda, 0);
    EXPECT_LE(a.lambda, 1);
    if (a.kind == MixKind::kCutmix) {
      EXPECT_TRUE(a.y0 <= a.y1 && a.y1 <= 32 && a.x0 <= a.x1 && a.x1 <= 24);
      EXPECT_DOUBLE_EQ(a.lambda,
                       1 - static_cast<double>((a.y1 - a.y0) * (a.x1 - a.x0)) / (32.0 * 24));
    }
  }
  EXPECT_LE(repeats, 3);
  // switch_prob 0.5 of the mixed batches are cutmix; prob 1: none unmixed.
  EXPECT_EQ(kinds[0], 0);
  EXPECT_GT(kinds[1], 70);
  EXPECT_GT(kinds[2], 70);
  // prob 0 mixes nothing; off, nothing is drawn either.
  options.prob = 0;
  EXPECT_EQ(draw(0, 0).kind, MixKind::kNone);
  EXPECT_EQ(draw(0, 0).lambda, 1);
  EXPECT_FALSE(MixOptions{}.enabled());
  options.prob = 1;
  options.off_epoch = 2;
  EXPECT_TRUE(options.active(1));
  EXPECT_FALSE(options.active(2));
}

// Beta(alpha, alpha) has mean 1/2 and variance 1 / (4 (2 alpha + 1)); 20000 draws put the sample
// moments within a few standard errors of them.
TEST(Mix, LambdaFollowsBetaAlphaAlpha) {
  for (const double alpha : {0.2, 1.0, 4.0}) {
    SCOPED_TRACE(alpha);
    MixOptions options;
    options.mixup_alpha = alpha;
    const int n = 20000;
    double sum = 0, sum_sq = 0, below = 0;
    for (int i = 0; i < n; ++i) {
      const double lambda = draw_mix(options, 0, 0, mix_seed(5, 0, i)).lambda;
      ASSERT_TRUE(std::isfinite(lambda));
      sum += lambda;
      sum_sq += lambda * lambda;
      below += lambda < 0.1 ? 1 : 0;
    }
    const double mean = sum / n, variance = sum_sq / n - mean * mean;
    EXPECT_NEAR(mean, 0.5, 0.01);
    EXPECT_NEAR(variance, 1 / (4 * (2 * alpha + 1)), 0.006);
    // P(lambda < 0.1) for Beta(1, 1) is 0.1: the shape, not only the moments, at alpha 1.
    if (alpha == 1.0) {
      EXPECT_NEAR(below / n, 0.1, 0.008);
    }
  }
}

TEST(Mix, BadOptionsAreRefusedNamingThem) {
  const auto with = [](auto change) {
    MixOptions options;
    change(options);
    return options;
  };
  test::expect_error([&] { check_mix_options(with([](auto& o) { o.mixup_alpha = -0.1; })); },
                     "mixup alpha must be >= 0");
  test::expect_error([&] { check_mix_options(with([](auto& o) { o.cutmix_alpha = NAN; })); },
                     "cutmix alpha must be >= 0");
  test::expect_error([&] { check_mix_options(with([](auto& o) { o.prob = 1.5; })); },
                     "mix probability must be in [0, 1]");
  test::expect_error([&] { check_mix_options(with([](auto& o) { o.switch_prob = -1; })); },
                     "switch probability must be in [0, 1]");
  test::expect_error([&] { check_mix_options(with([](auto& o) { o.off_epoch = -1; })); },
                     "off epoch must be >= 0");
  // Cutmix needs images.
  test::expect_error([] { mix_inputs(torch::zeros({4, 3}), cutmix_box(0.5, 4, 4, 2, 2)); },
                     "cutmix needs images");
}

// One epoch of one full batch with plain SGD: the trainer's step is lr x the gradient of the
// soft-target loss on the batch mixed with the draw of (seed, epoch 0, batch 0).
TEST(Mix, TheTrainerStepsOnTheMixedBatch) {
  auto [x, y] = test::blobs(4, 7);
  MixOptions mix;
  mix.mixup_alpha = 0.4;
  mix.seed = 9;
  const LossOptions loss{0.1, {0.5, 1.0, 2.0}};
  auto step = [&, x = x, y = y](const MixOptions& m) {
    torch::manual_seed(3);
    auto linear = std::make_shared<torch::nn::LinearImpl>(4, 3);
    ModuleNetwork network(linear, [linear](const torch::Tensor& t) { return linear->forward(t); });
    torch::optim::SGD sgd(network.trainable_parameters(), torch::optim::SGDOptions(0.5));
    TrainerOptions options;
    options.epochs = 1;
    options.num_classes = 3;
    options.progress = false;
    options.loss = loss;
    options.mix = m;
    Trainer trainer(network, sgd, options);
    TensorBatchSource source(x, y, 12, /*shuffle=*/false);
    const auto fit = trainer.fit(source);
    return std::make_pair(linear->weight.detach().clone(), fit.history.front());
  };
  const auto draw = draw_mix(mix, 0, 0, mix_seed(9, 0, 0));
  ASSERT_EQ(draw.kind, MixKind::kMixup);
  torch::manual_seed(3);
  torch::nn::Linear expected(4, 3);
  const auto batch = mix_batch(x, y, draw, 3, 0.1);
  const auto logits = expected->forward(batch.inputs);
  const auto by_hand_loss = soft_target_loss(logits, batch.soft_targets, loss.class_weights);
  by_hand_loss.backward();
  const auto by_hand = (expected->weight - 0.5 * expected->weight.grad()).detach();
  const auto [mixed, metrics] = step(mix);
  EXPECT_LT((mixed - by_hand).abs().max().item<double>(), 1e-6);
  EXPECT_NEAR(metrics.get("train_loss").value(), by_hand_loss.item<double>(), 1e-5);
  // train_acc counts the dominant target of each mixed image.
  const double dominant =
      logits.argmax(1).eq(batch.dominant_targets).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(metrics.get("train_acc").value(), dominant, 1e-9);
  // The same run again is the same; without mixing it is not.
  EXPECT_TRUE(step(mix).first.equal(mixed));
  EXPECT_GT((step(MixOptions{}).first - by_hand).abs().max().item<double>(), 1e-4);
}

}  // namespace
}  // namespace tlkit::train
