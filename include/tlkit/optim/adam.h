#pragma once
// tlkit::optim::Adam — adaptive moment estimation with bias correction (Kingma & Ba, "Adam: A
// Method for Stochastic Optimization", ICLR 2015) and the AMSGrad variant (Reddi, Kale & Kumar,
// "On the Convergence of Adam and Beyond", ICLR 2018), with exactly the semantics of Python's
// torch.optim.Adam. weight_decay here is an L2 term added to the gradient (see AdamW for the
// decoupled form).
//
// Update rule at step t (m, v and v̂ start at zero):
//   g ← g + weight_decay·w
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   amsgrad: v̂ ← max(v̂, v) and v̂ replaces v below
//   w ← w − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
//
// The step counter t is part of the saved state, so bias correction continues exactly after a
// save/load. Options are validated when the optimizer is built, for every param group added, and
// at each step.

#include <cstdint>
#include <tuple>
#include <vector>

#include <torch/optim/optimizer.h>

namespace tlkit::optim {

struct AdamOptions : public torch::optim::OptimizerCloneableOptions<AdamOptions> {
  using betas_t = std::tuple<double, double>;
  AdamOptions(double lr = 1e-3);  // NOLINT(google-explicit-constructor)
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, amsgrad) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(double lr) override;
};

// Per-parameter state of Adam and AdamW.
struct AdamParamState : public torch::optim::OptimizerCloneableParamState<AdamParamState> {
  TORCH_ARG(std::int64_t, step) = 0;
  TORCH_ARG(at::Tensor, exp_avg);
  TORCH_ARG(at::Tensor, exp_avg_sq);
  TORCH_ARG(at::Tensor, max_exp_avg_sq) = {};  // defined when amsgrad

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class Adam : public torch::optim::Optimizer {
 public:
  explicit Adam(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                AdamOptions defaults = {});
  explicit Adam(std::vector<at::Tensor> params, AdamOptions defaults = {});

  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Validates the group's options (when it has any) before adding it.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);
};

}  // namespace tlkit::optim
