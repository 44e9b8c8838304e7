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
  detail::write_adam_options(*this, archive);
}

void AdamWOptions::serialize(torch::serialize::InputArchive& archive) {
  detail::read_adam_options(*this, archive);
}

double AdamWOptions::get_lr() const { return lr(); }
void AdamWOptions::set_lr(double lr) { this->lr(lr); }

AdamW::AdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamWOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdamWOptions>(defaults)) {
  detail::validate_all<AdamWOptions>(*this, kName, validate);
}

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions defaults)
    : AdamW(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
                std::move(params))},
            defaults) {}

void AdamW::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  detail::validate_new_group<AdamWOptions>(*this, param_group, kName, validate);
  Optimizer::add_param_group(param_group);
}

at::Tensor AdamW::step(LossClosure closure) {
  return detail::adam_family_step<AdamWOptions>(*this, closure, kName,
                                                /*decoupled_weight_decay=*/true);
}

void AdamW::save(torch::serialize::OutputArchive& archive) const {
  detail::save_optimizer<AdamParamState, AdamWOptions>(*this, archive, kName);
}

void AdamW::load(torch::serialize::InputArchive& archive) {
  detail::adam_family_load<AdamWOptions>(*this, archive, kName);
}

}  // namespace tlkit::optim
