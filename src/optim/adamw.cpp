// tlkit::optim::AdamW: options and the optimizer; state and update are shared with Adam
// (adam.cpp, adam_update.cpp).

#include <tlkit/optim/adamw.h>

#include "adam_update.h"
#include "optimizer_util.h"

namespace tlkit::optim {
namespace {

constexpr const char* kName = "AdamW";

void validate(const AdamWOptions& options, const detail::OptionCheck& check) {
  detail::validate_adam_options(options, check);
}

}  // namespace

AdamWOptions::AdamWOptions(double lr) : lr_(lr) {}

void AdamWOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(betas);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(amsgrad);
}

void AdamWOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(betas_t, betas);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, amsgrad);
}

double AdamWOptions::get_lr() const { return lr(); }
void AdamWOptions::set_lr(double lr) { this->lr(lr); }

AdamW::AdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamWOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdamWOptions>(defaults)) {
  detail::validate_all<AdamWOptions>(*this, kName, validate);
}

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions defaults)
    : AdamW(std::vector<torch::optim::OptimizerParamGroup>{
                torch::optim::OptimizerParamGroup(std::move(params))},
            defaults) {}

void AdamW::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  detail::validate_new_group<AdamWOptions>(*this, param_group, kName, validate);
  Optimizer::add_param_group(param_group);
}

at::Tensor AdamW::step(LossClosure closure) {
  return detail::step_params<AdamWOptions>(
      *this, closure, kName, validate,
      [this](const at::Tensor& param, const at::Tensor& grad, const AdamWOptions& options) {
        detail::adam_update(param, grad, detail::state_of<AdamParamState>(*this, param),
                            detail::adam_hyper(options, /*decoupled_weight_decay=*/true));
      });
}

void AdamW::save(torch::serialize::OutputArchive& archive) const {
  detail::save_optimizer<AdamParamState, AdamWOptions>(*this, archive, kName);
}

void AdamW::load(torch::serialize::InputArchive& archive) {
  detail::load_optimizer<AdamParamState, AdamWOptions>(*this, archive, kName, validate);
  detail::conform_adam_state(*this, kName);
}

}  // namespace tlkit::optim
