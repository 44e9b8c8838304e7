#pragma once
// tlkit::optim::SGD — stochastic gradient descent with momentum, dampening, Nesterov momentum and
// L2 weight decay, with exactly the semantics of Python's torch.optim.SGD.
//
// Update rule (per parameter w with gradient g; the momentum buffer b exists when momentum ρ > 0):
//   g ← g + weight_decay·w
//   b ← g on the first step, then b ← ρ·b + (1 − dampening)·g
//   g ← g + ρ·b if nesterov, else g ← b
//   w ← w − lr·g
//
// SGD with momentum in the form v ← ρv + g, w ← w − ηv (Sutskever et al., "On the importance of
// initialization and momentum in deep learning", ICML 2013, with their v scaled by −1/η); with
// dampening = 0 that is this rule with v = b. They write Nesterov momentum in look-ahead form,
// v ← ρv − η∇f(w + ρv), w ← w + v. Tracking the look-ahead point w̃ = w + ρv instead of w, and
// b = −v/η, turns that into b ← ρb + ∇f(w̃), w̃ ← w̃ − η(∇f(w̃) + ρb): the re-parameterised form
// above (g' = g + ρb), which needs the gradient at the stored parameters only. Both forms visit
// the same points.
//
// Options are validated when the optimizer is built, for every param group added, and at each step.

#include <vector>

#include <torch/optim/optimizer.h>

namespace tlkit::optim {

struct SGDOptions : public torch::optim::OptimizerCloneableOptions<SGDOptions> {
  SGDOptions(double lr);  // NOLINT(google-explicit-constructor): like torch::optim::SGDOptions
  TORCH_ARG(double, lr);
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(double, dampening) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, nesterov) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(double lr) override;
};

struct SGDParamState : public torch::optim::OptimizerCloneableParamState<SGDParamState> {
  TORCH_ARG(at::Tensor, momentum_buffer);  // undefined until the first step with momentum

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class SGD : public torch::optim::Optimizer {
 public:
  explicit SGD(std::vector<torch::optim::OptimizerParamGroup> param_groups, SGDOptions defaults);
  explicit SGD(std::vector<at::Tensor> params, SGDOptions defaults);

  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Validates the group's options (when it has any) before adding it.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);
};

}  // namespace tlkit::optim
