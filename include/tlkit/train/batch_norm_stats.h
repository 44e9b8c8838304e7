#pragma once
// Batch-norm statistics recomputed for weights that were never trained as they are: an average of
// snapshots (SWA's torch.optim.swa_utils.update_bn). Averaging running means and variances of
// different weights does not give the statistics of the averaged weights.

#include <cstdint>

#include <c10/core/Device.h>

namespace tlkit::train {

class Network;
class BatchSource;

// One pass over `source` in training mode without gradients; every batch-norm layer that runs in
// training mode (not frozen, not held by --batch-norm frozen) gets as running mean and variance
// the average over the batches of each batch's mean and unbiased variance, as update_bn does with
// momentum None. Other weights are not changed; the training mode found is restored. With a
// sharded source the batches of every rank are averaged. Returns the number of layers updated
// (0: the network has none in training mode, and nothing was run beyond one batch).
std::int64_t recompute_batch_norm(Network& network, BatchSource& source,
                                  const c10::Device& device);

}  // namespace tlkit::train
