#pragma once
// tlkit::optim::AdaGrad — adaptive per-coordinate learning rates from the sum of squared gradients
// (Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
// Optimization", JMLR 2011), with exactly the semantics of Python's torch.optim.Adagrad.
//
// Update rule at step t (the sum s starts at initial_accumulator_value):
//   g ← g + weight_decay·w
//   s ← s + g²
//   w ← w − lr_t · g / (√s + eps),   lr_t = lr / (1 + (t − 1)·lr_decay)
//
// Options are validated when the optimizer is built, for every param group added, and at each step.

#include <cstdint>
#include <vector>

#include <torch/optim/optimizer.h>

namespace tlkit::optim {

struct AdaGradOptions : public torch::optim::OptimizerCloneableOptions<AdaGradOptions> {
  AdaGradOptions(double lr = 1e-2);  // NOLINT(google-explicit-constructor)
  TORCH_ARG(double, lr) = 1e-2;
  TORCH_ARG(double, lr_decay) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(double, initial_accumulator_value) = 0;
  TORCH_ARG(double, eps) = 1e-10;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(double lr) override;
};

struct AdaGradParamState : public torch::optim::OptimizerCloneableParamState<AdaGradParamState> {
  TORCH_ARG(std::int64_t, step) = 0;
  TORCH_ARG(at::Tensor, sum);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class AdaGrad : public torch::optim::Optimizer {
 public:
  explicit AdaGrad(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                   AdaGradOptions defaults = {});
  explicit AdaGrad(std::vector<at::Tensor> params, AdaGradOptions defaults = {});

  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Validates the group's options (when it has any) before adding it.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);
};

using Adagrad = AdaGrad;
using AdagradOptions = AdaGradOptions;
using AdagradParamState = AdaGradParamState;

}  // namespace tlkit::optim
