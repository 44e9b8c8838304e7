#pragma once
// The arithmetic of one forward pass, counted from the shapes the network's convolutions and
// matrix products see: a machine-independent measure of what training costs (the same on a quiet
// machine and a loaded one, on every CPU), for decisions that must not depend on wall time.

#include <torch/types.h>

namespace tlkit::train {

class Network;

// Floating-point operations (2 per multiply-add) of one forward pass of `network` on `input`,
// divided by the batch size: convolutions (grouped and transposed too) and matrix products
// (linear layers, mm, bmm, addmm, baddbmm); elementwise work, pooling and normalisation are
// not counted (a few percent on convolutional networks). Runs one forward pass without
// gradients, in eval mode, and restores the training mode it found.
double forward_flops_per_example(Network& network, const torch::Tensor& input);

}  // namespace tlkit::train
