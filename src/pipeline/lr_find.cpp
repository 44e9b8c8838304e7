#include <tlkit/pipeline/lr_find.h>

#include <cmath>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/core/progress.h>

namespace tlkit::pipeline {
namespace {

void suggest(LrFindResult& result) {
  const auto n = result.smoothed.size();
  if (n == 0) return;
  size_t lowest = 0;
  for (size_t i = 1; i < n; ++i)
    if (result.smoothed[i] < result.smoothed[lowest]) lowest = i;
  result.min_loss_lr = result.lrs[lowest];
  // Steepest descent: the most negative slope d(smoothed)/d(log lr), before the minimum; the first
  // few points are skipped (the smoothing is still warming up).
  const size_t skip = std::min<size_t>(n / 10, 10);
  double steepest = 0;
  size_t at = lowest;
  for (size_t i = skip + 1; i <= lowest; ++i) {
    const double slope =
        (result.smoothed[i] - result.smoothed[i - 1]) / std::log(result.lrs[i] / result.lrs[i - 1]);
    if (slope < steepest) {
      steepest = slope;
      at = i;
    }
  }
  result.suggested_lr = result.lrs[at];
}

}  // namespace

LrFindResult lr_range_test(train::Network& network, torch::optim::Optimizer& optimizer,
                           train::BatchSource& source, const LrFindOptions& options) {
  TLKIT_CHECK(options.start_lr > 0 && options.end_lr > options.start_lr,
              "the lr range must satisfy 0 < start < end, got ", options.start_lr, " .. ",
              options.end_lr);
  TLKIT_CHECK(options.steps >= 10, "the range test needs at least 10 steps, got ", options.steps);
  TLKIT_CHECK(options.smoothing >= 0 && options.smoothing < 1, "smoothing must be in [0, 1)");
  const auto saved = train::clone_state(network);
  std::vector<double> ratios;  // each group's lr relative to group 0
  const double lr0 = optimizer.param_groups().front().options().get_lr();
  for (auto& group : optimizer.param_groups())
    ratios.push_back(lr0 > 0 ? group.options().get_lr() / lr0 : 1.0);

  LrFindResult result;
  ProgressBar bar("lr-find", options.steps);
  double average = 0, best = INFINITY;
  std::int64_t epoch = 0;
  source.start_epoch(epoch);
  network.train(true);
  for (std::int64_t i = 0; i < options.steps; ++i) {
    const double lr = options.start_lr *
                      std::pow(options.end_lr / options.start_lr,
                               static_cast<double>(i) / static_cast<double>(options.steps - 1));
    for (size_t g = 0; g < ratios.size(); ++g)
      optimizer.param_groups()[g].options().set_lr(lr * ratios[g]);
    auto batch = source.next();
    if (!batch) {
      source.start_epoch(++epoch);
      batch = source.next();
      TLKIT_CHECK(batch.has_value(), "the training data yielded no batch");
    }
    auto loss = at::cross_entropy_loss(network.forward(batch->inputs.to(options.device)),
                                       batch->targets.to(options.device));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      result.diverged = true;
      break;
    }
    average = options.smoothing * average + (1 - options.smoothing) * value;
    const double smoothed = average / (1 - std::pow(options.smoothing, static_cast<double>(i + 1)));
    result.lrs.push_back(lr);
    result.losses.push_back(value);
    result.smoothed.push_back(smoothed);
    best = std::min(best, smoothed);
    bar.update(i + 1, {{"lr", lr}, {"loss", smoothed}});
    if (i > 0 && smoothed > options.divergence * best) {
      result.diverged = true;
      break;
    }
  }
  bar.finish();
  train::copy_state(network, saved);
  for (size_t g = 0; g < ratios.size(); ++g)
    optimizer.param_groups()[g].options().set_lr(lr0 * ratios[g]);
  suggest(result);
  return result;
}

}  // namespace tlkit::pipeline
