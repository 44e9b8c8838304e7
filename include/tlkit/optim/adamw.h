#pragma once
// tlkit::optim::AdamW — Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight
// Decay Regularization", ICLR 2019), with exactly the semantics of Python's torch.optim.AdamW.
//
// Update rule at step t: first w ← w·(1 − lr·weight_decay), then the Adam update without any L2
// term in the gradient (see adam.h): m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g²,
// (amsgrad: v̂ ← max(v̂, v)), w ← w − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps).
// weight_decay defaults to 1e-2, as in torch.
//
// Options are validated when the optimizer is built, for every param group added, and at each step.

#include <tuple>
#include <vector>

#include <torch/optim/optimizer.h>

#include <tlkit/optim/adam.h>

namespace tlkit::optim {

struct AdamWOptions : public torch::optim::OptimizerCloneableOptions<AdamWOptions> {
  using betas_t = std::tuple<double, double>;
  AdamWOptions(double lr = 1e-3);  // NOLINT(google-explicit-constructor)
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 1e-2;
  TORCH_ARG(bool, amsgrad) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(double lr) override;
};

// AdamW keeps the same per-parameter state as Adam.
using AdamWParamState = AdamParamState;

class AdamW : public torch::optim::Optimizer {
 public:
  explicit AdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                 AdamWOptions defaults = {});
  explicit AdamW(std::vector<at::Tensor> params, AdamWOptions defaults = {});

  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Validates the group's options (when it has any) before adding it.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);
};

}  // namespace tlkit::optim
