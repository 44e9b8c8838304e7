// tlkit::optim::Adam: options, state and the optimizer; the update itself is in adam_update.cpp.

#include <tlkit/optim/adam.h>

#include "adam_update.h"
#include "optimizer_util.h"

namespace tlkit::optim {
namespace {

constexpr const char* kName = "Adam";

void validate(const AdamOptions& options, const detail::OptionCheck& check) {
  detail::validate_adam_options(options, check);
}

}  // namespace

AdamOptions::AdamOptions(double lr) : lr_(lr) {}

void AdamOptions::serialize(torch::serialize::OutputArchive& archive) const {
  detail::write_adam_options(*this, archive);
}

void AdamOptions::serialize(torch::serialize::InputArchive& archive) {
  detail::read_adam_options(*this, archive);
}

double AdamOptions::get_lr() const { return lr(); }
void AdamOptions::set_lr(double lr) { this->lr(lr); }

void AdamParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(max_exp_avg_sq);
}

void AdamParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(std::int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, exp_avg_sq);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, max_exp_avg_sq);
}

Adam::Adam(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdamOptions>(defaults)) {
  detail::validate_all<AdamOptions>(*this, kName, validate);
}

Adam::Adam(std::vector<at::Tensor> params, AdamOptions defaults)
    : Adam(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
               std::move(params))},
           defaults) {}

void Adam::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  detail::validate_new_group<AdamOptions>(*this, param_group, kName, validate);
  Optimizer::add_param_group(param_group);
}

at::Tensor Adam::step(LossClosure closure) {
  return detail::adam_family_step<AdamOptions>(*this, closure, kName,
                                               /*decoupled_weight_decay=*/false);
}

void Adam::save(torch::serialize::OutputArchive& archive) const {
  detail::save_optimizer<AdamParamState, AdamOptions>(*this, archive, kName);
}

void Adam::load(torch::serialize::InputArchive& archive) {
  detail::adam_family_load<AdamOptions>(*this, archive, kName);
}

}  // namespace tlkit::optim
