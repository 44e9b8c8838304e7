#pragma once
// The learning-rate range test (Smith 2017, "Cyclical
// Learning Rates for Training Neural Networks"): train for a few hundred batches while the lr grows
// exponentially from `start_lr` to `end_lr`, record the smoothed loss, stop once it explodes, and
// suggest the lr where the loss falls fastest. Every param group is scaled by the same factor, so
// per-layer ratios are kept. The network's weights are restored afterwards (the optimizer's
// state, e.g. momentum buffers, is not: use a fresh optimizer for the real run).
//   lr_i = start · (end / start)^(i / (steps − 1))
//   smoothed_i = (β·avg_{i−1} + (1 − β)·loss_i) / (1 − β^i)       (β = 0.98)
//   stop when smoothed_i > divergence · min_j smoothed_j, or the loss is not finite

#include <cstdint>
#include <vector>

#include <torch/optim/optimizer.h>

#include <tlkit/train/batch_source.h>
#include <tlkit/train/network.h>

namespace tlkit::pipeline {

struct LrFindOptions {
  double start_lr = 1e-7;
  double end_lr = 10;
  std::int64_t steps = 100;
  double smoothing = 0.98;
  double divergence = 4;
  c10::Device device = c10::kCPU;
};

struct LrFindResult {
  std::vector<double> lrs;       // lr of group 0 at each step
  std::vector<double> losses;    // raw batch losses
  std::vector<double> smoothed;  // smoothed, debiased losses
  double suggested_lr = 0;       // steepest descent of the smoothed loss (per log lr)
  double min_loss_lr = 0;        // lr at the lowest smoothed loss
  bool diverged = false;
};

LrFindResult lr_range_test(train::Network& network, torch::optim::Optimizer& optimizer,
                           train::BatchSource& source, const LrFindOptions& options = {});

}  // namespace tlkit::pipeline
