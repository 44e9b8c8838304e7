#pragma once
// Internal: the Adam update shared by tlkit::optim::Adam (L2 weight decay in the gradient) and
// tlkit::optim::AdamW (decoupled weight decay), with the fused CPU kernel and the tensor-op path.

#include <tuple>

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>

#include <tlkit/optim/adam.h>

#include "optimizer_util.h"

namespace tlkit::optim::detail {

struct AdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool decoupled_weight_decay = false;  // AdamW: w ← w·(1 − lr·wd) instead of g ← g + wd·w
};

// The hyper-parameters of AdamOptions or AdamWOptions.
template <typename Options>
AdamHyper adam_hyper(const Options& options, bool decoupled_weight_decay) {
  AdamHyper hyper;
  hyper.lr = options.lr();
  hyper.beta1 = std::get<0>(options.betas());
  hyper.beta2 = std::get<1>(options.betas());
  hyper.eps = options.eps();
  hyper.weight_decay = options.weight_decay();
  hyper.amsgrad = options.amsgrad();
  hyper.decoupled_weight_decay = decoupled_weight_decay;
  return hyper;
}

// Option checks shared by Adam and AdamW.
template <typename Options>
void validate_adam_options(const Options& options, const OptionCheck& check) {
  check.non_negative("lr", options.lr());
  check.in_range("betas[0]", std::get<0>(options.betas()), 0.0, 1.0, true);
  check.in_range("betas[1]", std::get<1>(options.betas()), 0.0, 1.0, true);
  check.non_negative("eps", options.eps());
  check.non_negative("weight_decay", options.weight_decay());
}

// Checks loaded Adam state against its parameters and moves it to their dtype and device.
void conform_adam_state(torch::optim::Optimizer& optimizer, const char* name);

// Creates missing state (zeros), advances the step counter and updates param in place.
void adam_update(const at::Tensor& param, const at::Tensor& grad, AdamParamState& state,
                 const AdamHyper& hyper);

}  // namespace tlkit::optim::detail
