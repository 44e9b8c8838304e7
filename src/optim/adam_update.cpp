// The Adam / AdamW update: one fused pass on CPU, tensor ops elsewhere, both in torch's order.

#include "adam_update.h"

#include <cmath>

#include "kernel_util.h"
#include "torch_fused.h"

namespace tlkit::optim::detail {
namespace {

// Per-step scalars, computed in double as Python does.
struct AdamScalars {
  double step_size;              // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

AdamScalars adam_scalars(const AdamHyper& hyper, std::int64_t step) {
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(hyper.beta1, t);
  const double bias_correction2 = 1 - std::pow(hyper.beta2, t);
  return {hyper.lr / bias_correction1, std::sqrt(bias_correction2)};
}

void adam_fused(const at::Tensor& param, const at::Tensor& grad, const AdamParamState& state,
                const AdamHyper& hyper, const AdamScalars& scalars) {
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "tlkit::optim::Adam", [&] {
    using T = scalar_t;
    const bool l2 = !hyper.decoupled_weight_decay && hyper.weight_decay != 0;
    const bool decoupled = hyper.decoupled_weight_decay;
    const T weight_decay = static_cast<T>(hyper.weight_decay);
    const T decay = static_cast<T>(1 - hyper.lr * hyper.weight_decay);
    const T beta1 = static_cast<T>(hyper.beta1);
    const T beta2 = static_cast<T>(hyper.beta2);
    const T one_minus_beta1 = static_cast<T>(1 - hyper.beta1);
    const T one_minus_beta2 = static_cast<T>(1 - hyper.beta2);
    const T bias_correction2_sqrt = static_cast<T>(scalars.bias_correction2_sqrt);
    const T eps = static_cast<T>(hyper.eps);
    const T neg_step_size = static_cast<T>(-scalars.step_size);
    auto update = [=](auto& p, auto g, auto& m, auto& v, auto& v_max) {
      if (decoupled) p = p * decay;             // p.mul_(1 - lr*weight_decay)
      if (l2) g = g + weight_decay * p;         // g.add(p, alpha=weight_decay)
      m = m * beta1 + one_minus_beta1 * g;      // m.mul_(beta1).add_(g, alpha=1-beta1)
      v = v * beta2 + one_minus_beta2 * g * g;  // v.mul_(beta2).addcmul_(g, g, value=1-beta2)
      auto second_moment = v;
      if constexpr (is_present<decltype(v_max)>) {
        v_max = lane_max(v_max, v);  // torch.maximum(v_max, v, out=v_max)
        second_moment = v_max;
      }
      const auto denom = lane_sqrt(second_moment) / bias_correction2_sqrt + eps;
      p = p + neg_step_size * m / denom;  // p.addcdiv_(m, denom, value=-step_size)
    };
    const std::int64_t n = param.numel();
    T* p = data_of<T>(param);
    const T* g = data_of<const T>(grad);
    T* m = data_of<T>(state.exp_avg());
    T* v = data_of<T>(state.exp_avg_sq());
    with_optional(hyper.amsgrad, data_of<T>(state.max_exp_avg_sq()),
                  [&](auto v_max) { fused_for_each<T>(n, update, p, g, m, v, v_max); });
  });
  finish_fused_update(param);
}

void adam_tensor_ops(const at::Tensor& param, const at::Tensor& grad, const AdamParamState& state,
                     const AdamHyper& hyper, const AdamScalars& scalars) {
  if (hyper.decoupled_weight_decay) param.mul_(1 - hyper.lr * hyper.weight_decay);
  const bool l2 = !hyper.decoupled_weight_decay && hyper.weight_decay != 0;
  const at::Tensor g = l2 ? grad.add(param, hyper.weight_decay) : grad;
  state.exp_avg().mul_(hyper.beta1).add_(g, 1 - hyper.beta1);
  state.exp_avg_sq().mul_(hyper.beta2).addcmul_(g, g, 1 - hyper.beta2);
  at::Tensor denom;
  if (hyper.amsgrad) {
    at::Tensor v_max = state.max_exp_avg_sq();
    at::maximum_out(v_max, v_max, state.exp_avg_sq());
    denom = (v_max.sqrt() / scalars.bias_correction2_sqrt).add_(hyper.eps);
  } else {
    denom = (state.exp_avg_sq().sqrt() / scalars.bias_correction2_sqrt).add_(hyper.eps);
  }
  param.addcdiv_(state.exp_avg(), denom, -scalars.step_size);
}

}  // namespace

void conform_adam_state(torch::optim::Optimizer& optimizer, const char* name) {
  for_each_state<AdamParamState>(optimizer, [name](const at::Tensor& param, AdamParamState& state) {
    state.exp_avg(conform_state_tensor(state.exp_avg(), param, "exp_avg", name));
    state.exp_avg_sq(conform_state_tensor(state.exp_avg_sq(), param, "exp_avg_sq", name));
    state.max_exp_avg_sq(
        conform_state_tensor(state.max_exp_avg_sq(), param, "max_exp_avg_sq", name));
  });
}

namespace {

// Missing state as zeros; the step counter advanced.
void begin_step(const at::Tensor& param, AdamParamState& state, const AdamHyper& hyper) {
  if (!state.exp_avg().defined()) state.exp_avg(at::zeros_like(param));
  if (!state.exp_avg_sq().defined()) state.exp_avg_sq(at::zeros_like(param));
  if (hyper.amsgrad && !state.max_exp_avg_sq().defined()) {
    state.max_exp_avg_sq(at::zeros_like(param));
  }
  state.step(state.step() + 1);
}

}  // namespace

void adam_update_foreach(const std::vector<AdamItem>& items, const AdamHyper& hyper) {
  if (items.empty()) return;
  std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
  std::vector<at::Scalar> neg_step_sizes, bias_corrections2_sqrt;
  for (const AdamItem& item : items) {
    begin_step(item.param, *item.state, hyper);
    const AdamScalars scalars = adam_scalars(hyper, item.state->step());
    params.push_back(item.param);
    grads.push_back(item.grad);
    exp_avgs.push_back(item.state->exp_avg());
    exp_avg_sqs.push_back(item.state->exp_avg_sq());
    if (hyper.amsgrad) max_exp_avg_sqs.push_back(item.state->max_exp_avg_sq());
    neg_step_sizes.emplace_back(-scalars.step_size);
    bias_corrections2_sqrt.emplace_back(scalars.bias_correction2_sqrt);
  }
  // The order of torch.optim's _multi_tensor_adam / _multi_tensor_adamw.
  if (hyper.decoupled_weight_decay) at::_foreach_mul_(params, 1 - hyper.lr * hyper.weight_decay);
  if (!hyper.decoupled_weight_decay && hyper.weight_decay != 0)
    grads = at::_foreach_add(grads, params, hyper.weight_decay);
  at::_foreach_mul_(exp_avgs, hyper.beta1);
  at::_foreach_add_(exp_avgs, grads, 1 - hyper.beta1);
  at::_foreach_mul_(exp_avg_sqs, hyper.beta2);
  at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - hyper.beta2);
  std::vector<at::Tensor> denom;
  if (hyper.amsgrad) {
    at::_foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs);
    denom = at::_foreach_sqrt(max_exp_avg_sqs);
  } else {
    denom = at::_foreach_sqrt(exp_avg_sqs);
  }
  at::_foreach_div_(denom, bias_corrections2_sqrt);
  at::_foreach_add_(denom, hyper.eps);
  at::_foreach_addcdiv_(params, exp_avgs, denom, neg_step_sizes);
  count_foreach_updates(items.size());
}

void adam_update(const at::Tensor& param, const at::Tensor& grad, AdamParamState& state,
                 const AdamHyper& hyper) {
  begin_step(param, state, hyper);
  const AdamScalars scalars = adam_scalars(hyper, state.step());
  const at::Tensor v_max = hyper.amsgrad ? state.max_exp_avg_sq() : at::Tensor();
  // LibTorch 2.6's fused AMSGrad drops NaN in its running maximum (torch.maximum keeps it):
  // kAuto leaves amsgrad to tlkit's kernel, which follows torch.optim.
  if (torch_fused_applies({param, grad, state.exp_avg(), state.exp_avg_sq(), v_max},
                          /*in_auto=*/!hyper.amsgrad)) {
    torch_fused_adam(param, grad, state.exp_avg(), state.exp_avg_sq(), v_max, state.step(),
                     hyper.lr, hyper.beta1, hyper.beta2, hyper.weight_decay, hyper.eps,
                     hyper.amsgrad, hyper.decoupled_weight_decay);
  } else if (fused_cpu_applies({param, grad, state.exp_avg(), state.exp_avg_sq(), v_max})) {
    adam_fused(param, grad, state, hyper, scalars);
  } else {
    adam_tensor_ops(param, grad, state, hyper, scalars);
  }
}

}  // namespace tlkit::optim::detail
