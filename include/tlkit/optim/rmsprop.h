#pragma once
// tlkit::optim::RMSProp — gradient scaled by a running root-mean-square of recent gradients
// (Tieleman & Hinton, "Neural Networks for Machine Learning", lecture notes 6.5, 2012; the
// centered variant from Graves, "Generating Sequences With Recurrent Neural Networks", 2013), with
// exactly the semantics of Python's torch.optim.RMSprop.
//
// Update rule (a = square_avg, m = grad_avg, b = momentum_buffer, all starting at zero):
//   g ← g + weight_decay·w
//   a ← α·a + (1 − α)·g²
//   centered: m ← α·m + (1 − α)·g,  d ← √(a − m²) + eps;   otherwise d ← √a + eps
//   momentum > 0: b ← momentum·b + g/d,  w ← w − lr·b;      otherwise w ← w − lr·g/d
//
// Options are validated when the optimizer is built, for every param group added, and at each step.

#include <cstdint>
#include <vector>

#include <torch/optim/optimizer.h>

namespace tlkit::optim {

struct RMSPropOptions : public torch::optim::OptimizerCloneableOptions<RMSPropOptions> {
  RMSPropOptions(double lr = 1e-2);  // NOLINT(google-explicit-constructor)
  TORCH_ARG(double, lr) = 1e-2;
  TORCH_ARG(double, alpha) = 0.99;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(bool, centered) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(double lr) override;
};

struct RMSPropParamState : public torch::optim::OptimizerCloneableParamState<RMSPropParamState> {
  TORCH_ARG(std::int64_t, step) = 0;
  TORCH_ARG(at::Tensor, square_avg);
  TORCH_ARG(at::Tensor, momentum_buffer) = {};  // defined when momentum > 0
  TORCH_ARG(at::Tensor, grad_avg) = {};         // defined when centered

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class RMSProp : public torch::optim::Optimizer {
 public:
  explicit RMSProp(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                   RMSPropOptions defaults = {});
  explicit RMSProp(std::vector<at::Tensor> params, RMSPropOptions defaults = {});

  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Validates the group's options (when it has any) before adding it.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);
};

using RMSprop = RMSProp;
using RMSpropOptions = RMSPropOptions;
using RMSpropParamState = RMSPropParamState;

}  // namespace tlkit::optim
