#pragma once
// Internal: the Adam update shared by tlkit::optim::Adam (L2 weight decay in the gradient) and
// tlkit::optim::AdamW (decoupled weight decay), with the fused CPU kernel and the tensor-op path.

#include <algorithm>
#include <iterator>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <tlkit/optim/adam.h>

#include "kernel_util.h"
#include "optimizer_util.h"
#include "torch_fused.h"

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

// Creates missing state (zeros), advances the step counter and updates param in place.
void adam_update(const at::Tensor& param, const at::Tensor& grad, AdamParamState& state,
                 const AdamHyper& hyper);

// One parameter of a multi-tensor update.
struct AdamItem {
  at::Tensor param, grad;
  AdamParamState* state;
};
// The same update for many parameters sharing hyper-parameters, device and dtype, with one
// at::_foreach_* call per operation (torch.optim's _multi_tensor_adam); state created as needed.
void adam_update_foreach(const std::vector<AdamItem>& items, const AdamHyper& hyper);

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

// Archive entries of AdamOptions / AdamWOptions (the names torch uses).
template <typename Options>
void write_adam_options(const Options& options, torch::serialize::OutputArchive& archive) {
  archive.write("lr", c10::IValue(options.lr()));
  archive.write("betas", c10::IValue(options.betas()));
  archive.write("eps", c10::IValue(options.eps()));
  archive.write("weight_decay", c10::IValue(options.weight_decay()));
  archive.write("amsgrad", c10::IValue(options.amsgrad()));
}

template <typename Options>
void read_adam_options(Options& options, torch::serialize::InputArchive& archive) {
  auto read = [&archive](const char* key) {
    c10::IValue value;
    archive.read(key, value);
    return value;
  };
  options.lr(read("lr").toDouble());
  options.betas(read("betas").template to<typename Options::betas_t>());
  options.eps(read("eps").toDouble());
  options.weight_decay(read("weight_decay").toDouble());
  options.amsgrad(read("amsgrad").toBool());
}

// The step of Adam (decoupled_weight_decay false) or AdamW (true).
template <typename Options>
at::Tensor adam_family_step(torch::optim::Optimizer& optimizer,
                            const torch::optim::Optimizer::LossClosure& closure, const char* name,
                            bool decoupled_weight_decay) {
  // Parameters for the foreach path are collected per group, device and dtype, then updated
  // together after the per-parameter ones.
  struct SameKind {
    const Options* options;
    c10::Device device;
    at::ScalarType dtype;
    std::vector<AdamItem> items;
  };
  std::vector<SameKind> batches;
  at::Tensor loss = step_params<Options>(
      optimizer, closure, name, validate_adam_options<Options>,
      [&](const at::Tensor& param, const at::Tensor& grad, const Options& options) {
        auto& state = state_of<AdamParamState>(optimizer, param);
        if (!foreach_applies(param) || torch_fused_applies({param, grad}, !options.amsgrad())) {
          adam_update(param, grad, state, adam_hyper(options, decoupled_weight_decay));
          return;
        }
        auto batch = std::find_if(batches.begin(), batches.end(), [&](const SameKind& b) {
          return b.options == &options && b.device == param.device() &&
                 b.dtype == param.scalar_type();
        });
        if (batch == batches.end()) {
          batches.push_back({&options, param.device(), param.scalar_type(), {}});
          batch = std::prev(batches.end());
        }
        batch->items.push_back({param, grad, &state});
      });
  at::NoGradGuard no_grad;
  for (const SameKind& batch : batches)
    adam_update_foreach(batch.items, adam_hyper(*batch.options, decoupled_weight_decay));
  return loss;
}

template <typename Options>
void adam_family_load(torch::optim::Optimizer& optimizer, torch::serialize::InputArchive& archive,
                      const char* name) {
  load_optimizer<AdamParamState, Options>(optimizer, archive, name, validate_adam_options<Options>);
  conform_adam_state(optimizer, name);
}

}  // namespace tlkit::optim::detail
