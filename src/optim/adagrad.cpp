// tlkit::optim::AdaGrad: options, state, the fused CPU kernel and the tensor-op path.

#include <tlkit/optim/adagrad.h>

#include "kernel_util.h"
#include "optimizer_util.h"

namespace tlkit::optim {
namespace {

constexpr const char* kName = "AdaGrad";

void validate(const AdaGradOptions& options, const detail::OptionCheck& check) {
  check.non_negative("lr", options.lr());
  check.non_negative("lr_decay", options.lr_decay());
  check.non_negative("weight_decay", options.weight_decay());
  check.non_negative("initial_accumulator_value", options.initial_accumulator_value());
  check.non_negative("eps", options.eps());
}

// clr = lr / (1 + (step - 1) * lr_decay), in double as Python computes it.
double decayed_lr(const AdaGradOptions& options, std::int64_t step) {
  return options.lr() / (1 + static_cast<double>(step - 1) * options.lr_decay());
}

// One pass over p, g and the sum of squares s.
void adagrad_fused(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& sum,
                   const AdaGradOptions& options, double clr) {
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "tlkit::optim::AdaGrad", [&] {
    using T = scalar_t;
    const bool l2 = options.weight_decay() != 0;
    const T weight_decay = static_cast<T>(options.weight_decay());
    const T one = 1;
    const T eps = static_cast<T>(options.eps());
    const T neg_clr = static_cast<T>(-clr);
    auto update = [=](auto& p, auto g, auto& s) {
      if (l2) g = g + weight_decay * p;                 // g.add(p, alpha=weight_decay)
      s = s + one * g * g;                              // s.addcmul_(g, g, value=1)
      const auto std_dev = detail::lane_sqrt(s) + eps;  // s.sqrt().add_(eps)
      p = p + neg_clr * g / std_dev;                    // p.addcdiv_(g, std, value=-clr)
    };
    detail::fused_for_each<T>(param.numel(), update, detail::data_of<T>(param),
                              detail::data_of<const T>(grad), detail::data_of<T>(sum));
  });
  detail::finish_fused_update(param);
}

// The same update with tensor ops, in torch.optim's order.
void adagrad_tensor_ops(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& sum,
                        const AdaGradOptions& options, double clr) {
  const at::Tensor g = options.weight_decay() != 0 ? grad.add(param, options.weight_decay()) : grad;
  sum.addcmul_(g, g, 1);
  const at::Tensor std = sum.sqrt().add_(options.eps());
  param.addcdiv_(g, std, -clr);
}

}  // namespace

AdaGradOptions::AdaGradOptions(double lr) : lr_(lr) {}

void AdaGradOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(initial_accumulator_value);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
}

void AdaGradOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, initial_accumulator_value);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
}

double AdaGradOptions::get_lr() const { return lr(); }
void AdaGradOptions::set_lr(double lr) { this->lr(lr); }

void AdaGradParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(sum);
}

void AdaGradParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(std::int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, sum);
}

AdaGrad::AdaGrad(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                 AdaGradOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdaGradOptions>(defaults)) {
  detail::validate_all<AdaGradOptions>(*this, kName, validate);
}

AdaGrad::AdaGrad(std::vector<at::Tensor> params, AdaGradOptions defaults)
    : AdaGrad(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
                  std::move(params))},
              defaults) {}

void AdaGrad::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  detail::validate_new_group<AdaGradOptions>(*this, param_group, kName, validate);
  Optimizer::add_param_group(param_group);
}

at::Tensor AdaGrad::step(LossClosure closure) {
  return detail::step_params<AdaGradOptions>(
      *this, closure, kName, validate,
      [this](const at::Tensor& param, const at::Tensor& grad, const AdaGradOptions& options) {
        auto& state = detail::state_of<AdaGradParamState>(*this, param);
        if (!state.sum().defined()) {
          state.sum(at::full_like(param, options.initial_accumulator_value()));
        }
        state.step(state.step() + 1);
        const double clr = decayed_lr(options, state.step());
        if (detail::fused_cpu_applies({param, grad, state.sum()})) {
          adagrad_fused(param, grad, state.sum(), options, clr);
        } else {
          adagrad_tensor_ops(param, grad, state.sum(), options, clr);
        }
      });
}

void AdaGrad::save(torch::serialize::OutputArchive& archive) const {
  detail::save_optimizer<AdaGradParamState, AdaGradOptions>(*this, archive, kName);
}

void AdaGrad::load(torch::serialize::InputArchive& archive) {
  detail::load_optimizer<AdaGradParamState, AdaGradOptions>(*this, archive, kName, validate);
  detail::for_each_state<AdaGradParamState>(
      *this, [](const at::Tensor& param, AdaGradParamState& state) {
        state.sum(detail::conform_state_tensor(state.sum(), param, "sum", kName));
      });
}

}  // namespace tlkit::optim
