#pragma once
// tlkit::optim — torch.optim-exact optimizers (SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam,
// AdamW) as torch::optim::Optimizer subclasses with fused single-pass CPU kernels, plus a factory
// by name. Including this umbrella also brings LibTorch's tensor factories (<torch/types.h>).

#include <torch/types.h>

#include <tlkit/optim/adagrad.h>
#include <tlkit/optim/adam.h>
#include <tlkit/optim/adamw.h>
#include <tlkit/optim/factory.h>
#include <tlkit/optim/kernel_mode.h>
#include <tlkit/optim/registry.h>
#include <tlkit/optim/rmsprop.h>
#include <tlkit/optim/settings.h>
#include <tlkit/optim/sgd.h>
#include <tlkit/optim/state_format.h>
