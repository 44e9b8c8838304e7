// tlkit::optim::SGD: options, state, the fused CPU kernel and the tensor-op path.

#include <tlkit/optim/sgd.h>

#include "kernel_util.h"
#include "optimizer_util.h"
#include "torch_fused.h"

namespace tlkit::optim {
namespace {

constexpr const char* kName = "SGD";

void validate(const SGDOptions& options, const detail::OptionCheck& check) {
  check.non_negative("lr", options.lr());
  check.non_negative("momentum", options.momentum());
  check.in_range("dampening", options.dampening(), 0.0, 1.0, false);
  check.non_negative("weight_decay", options.weight_decay());
  check.require(!options.nesterov() || (options.momentum() > 0 && options.dampening() == 0),
                "nesterov=true needs momentum > 0 and dampening = 0 (got momentum = " +
                    std::to_string(options.momentum()) +
                    ", dampening = " + std::to_string(options.dampening()) + ")");
}

// One pass over p, g and the momentum buffer b (when momentum > 0).
void sgd_fused(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& buffer,
               const SGDOptions& options, bool first_step) {
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "tlkit::optim::SGD", [&] {
    using T = scalar_t;
    const bool l2 = options.weight_decay() != 0;
    const bool nesterov = options.nesterov();
    const T weight_decay = static_cast<T>(options.weight_decay());
    const T momentum = static_cast<T>(options.momentum());
    const T one_minus_dampening = static_cast<T>(1 - options.dampening());
    const T neg_lr = static_cast<T>(-options.lr());
    auto update = [=](auto& p, auto g, auto& b) {
      if (l2) g = g + weight_decay * p;  // g.add(p, alpha=weight_decay)
      if constexpr (detail::is_present<decltype(b)>) {
        // first step: b = clone(g); then b.mul_(momentum).add_(g, alpha=1-dampening)
        b = first_step ? g : b * momentum + one_minus_dampening * g;
        g = nesterov ? g + momentum * b : b;
      }
      p = p + neg_lr * g;  // p.add_(g, alpha=-lr)
    };
    detail::with_optional(buffer.defined(), detail::data_of<T>(buffer), [&](auto b) {
      detail::fused_for_each<T>(param.numel(), update, detail::data_of<T>(param),
                                detail::data_of<const T>(grad), b);
    });
  });
  detail::finish_fused_update(param);
}

// The same update with tensor ops, in torch.optim's order.
void sgd_tensor_ops(const at::Tensor& param, const at::Tensor& grad, at::Tensor& buffer,
                    const SGDOptions& options, bool first_step) {
  at::Tensor d_p = options.weight_decay() != 0 ? grad.add(param, options.weight_decay()) : grad;
  if (options.momentum() != 0) {
    if (first_step) {
      buffer.copy_(d_p);
    } else {
      buffer.mul_(options.momentum()).add_(d_p, 1 - options.dampening());
    }
    d_p = options.nesterov() ? d_p.add(buffer, options.momentum()) : buffer;
  }
  param.add_(d_p, -options.lr());
}

}  // namespace

SGDOptions::SGDOptions(double lr) : lr_(lr) {}

void SGDOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(dampening);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
}

void SGDOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, dampening);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
}

double SGDOptions::get_lr() const { return lr(); }
void SGDOptions::set_lr(double lr) { this->lr(lr); }

void SGDParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void SGDParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, momentum_buffer);
}

SGD::SGD(std::vector<torch::optim::OptimizerParamGroup> param_groups, SGDOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<SGDOptions>(defaults)) {
  detail::validate_all<SGDOptions>(*this, kName, validate);
}

SGD::SGD(std::vector<at::Tensor> params, SGDOptions defaults)
    : SGD(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
              std::move(params))},
          defaults) {}

void SGD::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  detail::validate_new_group<SGDOptions>(*this, param_group, kName, validate);
  Optimizer::add_param_group(param_group);
}

at::Tensor SGD::step(LossClosure closure) {
  return detail::step_params<SGDOptions>(
      *this, closure, kName, validate,
      [this](const at::Tensor& param, const at::Tensor& grad, const SGDOptions& options) {
        at::Tensor buffer;
        bool first_step = false;
        if (options.momentum() != 0) {
          auto& state = detail::state_of<SGDParamState>(*this, param);
          first_step = !state.momentum_buffer().defined();
          if (first_step) state.momentum_buffer(at::empty_like(param));
          buffer = state.momentum_buffer();
        }
        if (detail::torch_fused_applies({param, grad, buffer})) {
          detail::torch_fused_sgd(param, grad, buffer, options.lr(), options.momentum(),
                                  options.dampening(), options.weight_decay(), options.nesterov(),
                                  first_step);
        } else if (detail::fused_cpu_applies({param, grad, buffer})) {
          sgd_fused(param, grad, buffer, options, first_step);
        } else {
          sgd_tensor_ops(param, grad, buffer, options, first_step);
        }
      });
}

void SGD::save(torch::serialize::OutputArchive& archive) const {
  detail::save_optimizer<SGDParamState, SGDOptions>(*this, archive, kName);
}

void SGD::load(torch::serialize::InputArchive& archive) {
  detail::load_optimizer<SGDParamState, SGDOptions>(*this, archive, kName, validate);
  detail::for_each_state<SGDParamState>(*this, [](const at::Tensor& param, SGDParamState& state) {
    state.momentum_buffer(
        detail::conform_state_tensor(state.momentum_buffer(), param, "momentum_buffer", kName));
  });
}

}  // namespace tlkit::optim
