// tlkit::optim::RMSProp: options, state, the fused CPU kernel and the tensor-op path.

#include <tlkit/optim/rmsprop.h>

#include "kernel_util.h"
#include "optimizer_util.h"

namespace tlkit::optim {
namespace {

constexpr const char* kName = "RMSProp";

void validate(const RMSPropOptions& options, const detail::OptionCheck& check) {
  check.non_negative("lr", options.lr());
  check.in_range("alpha", options.alpha(), 0.0, 1.0, false);
  check.non_negative("eps", options.eps());
  check.non_negative("weight_decay", options.weight_decay());
  check.non_negative("momentum", options.momentum());
}

// One pass over p, g, the square average a and, when used, the grad average m and buffer b.
void rmsprop_fused(const at::Tensor& param, const at::Tensor& grad, const RMSPropParamState& state,
                   const RMSPropOptions& options) {
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "tlkit::optim::RMSProp", [&] {
    using T = scalar_t;
    const bool l2 = options.weight_decay() != 0;
    const T weight_decay = static_cast<T>(options.weight_decay());
    const T alpha = static_cast<T>(options.alpha());
    const T one_minus_alpha = static_cast<T>(1 - options.alpha());
    const T eps = static_cast<T>(options.eps());
    const T momentum = static_cast<T>(options.momentum());
    const T one = 1;
    const T minus_one = -1;
    const T neg_lr = static_cast<T>(-options.lr());
    auto update = [=](auto& p, auto g, auto& a, auto& m, auto& b) {
      if (l2) g = g + weight_decay * p;         // g.add(p, alpha=weight_decay)
      a = a * alpha + one_minus_alpha * g * g;  // a.mul_(alpha).addcmul_(g, g, value=1-alpha)
      auto avg = a;
      if constexpr (detail::is_present<decltype(m)>) {
        m = m * alpha + one_minus_alpha * g;             // m.mul_(alpha).add_(g, alpha=1-alpha)
        avg = detail::lane_sqrt(a + minus_one * m * m);  // a.addcmul(m, m, value=-1).sqrt_()
      } else {
        avg = detail::lane_sqrt(a);
      }
      avg = avg + eps;  // avg.add_(eps)
      if constexpr (detail::is_present<decltype(b)>) {
        b = b * momentum + one * g / avg;  // b.mul_(momentum).addcdiv_(g, avg)
        p = p + neg_lr * b;                // p.add_(b, alpha=-lr)
      } else {
        p = p + neg_lr * g / avg;  // p.addcdiv_(g, avg, value=-lr)
      }
    };
    const std::int64_t n = param.numel();
    T* p = detail::data_of<T>(param);
    const T* g = detail::data_of<const T>(grad);
    T* a = detail::data_of<T>(state.square_avg());
    detail::with_optional(options.centered(), detail::data_of<T>(state.grad_avg()), [&](auto m) {
      detail::with_optional(options.momentum() > 0, detail::data_of<T>(state.momentum_buffer()),
                            [&](auto b) { detail::fused_for_each<T>(n, update, p, g, a, m, b); });
    });
  });
  detail::finish_fused_update(param);
}

// The same update with tensor ops, in torch.optim's order.
void rmsprop_tensor_ops(const at::Tensor& param, const at::Tensor& grad,
                        const RMSPropParamState& state, const RMSPropOptions& options) {
  const at::Tensor g = options.weight_decay() != 0 ? grad.add(param, options.weight_decay()) : grad;
  const at::Tensor& square_avg = state.square_avg();
  square_avg.mul_(options.alpha()).addcmul_(g, g, 1 - options.alpha());
  at::Tensor avg;
  if (options.centered()) {
    const at::Tensor& grad_avg = state.grad_avg();
    grad_avg.mul_(options.alpha()).add_(g, 1 - options.alpha());
    avg = square_avg.addcmul(grad_avg, grad_avg, -1).sqrt_();
  } else {
    avg = square_avg.sqrt();
  }
  avg.add_(options.eps());
  if (options.momentum() > 0) {
    const at::Tensor& buffer = state.momentum_buffer();
    buffer.mul_(options.momentum()).addcdiv_(g, avg);
    param.add_(buffer, -options.lr());
  } else {
    param.addcdiv_(g, avg, -options.lr());
  }
}

// Creates the state tensors the options need (zeros, as torch does).
void ensure_state(RMSPropParamState& state, const at::Tensor& param,
                  const RMSPropOptions& options) {
  if (!state.square_avg().defined()) state.square_avg(at::zeros_like(param));
  if (options.momentum() > 0 && !state.momentum_buffer().defined()) {
    state.momentum_buffer(at::zeros_like(param));
  }
  if (options.centered() && !state.grad_avg().defined()) state.grad_avg(at::zeros_like(param));
}

}  // namespace

RMSPropOptions::RMSPropOptions(double lr) : lr_(lr) {}

void RMSPropOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(alpha);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(centered);
}

void RMSPropOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, alpha);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, centered);
}

double RMSPropOptions::get_lr() const { return lr(); }
void RMSPropOptions::set_lr(double lr) { this->lr(lr); }

void RMSPropParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(square_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(grad_avg);
}

void RMSPropParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(std::int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, square_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, momentum_buffer);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, grad_avg);
}

RMSProp::RMSProp(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                 RMSPropOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<RMSPropOptions>(defaults)) {
  detail::validate_all<RMSPropOptions>(*this, kName, validate);
}

RMSProp::RMSProp(std::vector<at::Tensor> params, RMSPropOptions defaults)
    : RMSProp(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
                  std::move(params))},
              defaults) {}

void RMSProp::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  detail::validate_new_group<RMSPropOptions>(*this, param_group, kName, validate);
  Optimizer::add_param_group(param_group);
}

at::Tensor RMSProp::step(LossClosure closure) {
  return detail::step_params<RMSPropOptions>(
      *this, closure, kName, validate,
      [this](const at::Tensor& param, const at::Tensor& grad, const RMSPropOptions& options) {
        auto& state = detail::state_of<RMSPropParamState>(*this, param);
        ensure_state(state, param, options);
        state.step(state.step() + 1);
        const at::Tensor grad_avg = options.centered() ? state.grad_avg() : at::Tensor();
        const at::Tensor buffer = options.momentum() > 0 ? state.momentum_buffer() : at::Tensor();
        if (detail::fused_cpu_applies({param, grad, state.square_avg(), grad_avg, buffer})) {
          rmsprop_fused(param, grad, state, options);
        } else {
          rmsprop_tensor_ops(param, grad, state, options);
        }
      });
}

void RMSProp::save(torch::serialize::OutputArchive& archive) const {
  detail::save_optimizer<RMSPropParamState, RMSPropOptions>(*this, archive, kName);
}

void RMSProp::load(torch::serialize::InputArchive& archive) {
  detail::load_optimizer<RMSPropParamState, RMSPropOptions>(*this, archive, kName, validate);
  detail::for_each_state<RMSPropParamState>(*this, [](const at::Tensor& param,
                                                      RMSPropParamState& state) {
    state.square_avg(detail::conform_state_tensor(state.square_avg(), param, "square_avg", kName));
    state.momentum_buffer(
        detail::conform_state_tensor(state.momentum_buffer(), param, "momentum_buffer", kName));
    state.grad_avg(detail::conform_state_tensor(state.grad_avg(), param, "grad_avg", kName));
  });
}

}  // namespace tlkit::optim
