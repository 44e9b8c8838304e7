#pragma once
// Builds a tlkit optimizer by name: make_optimizer("adam", groups, settings).
//
// Every group gets the named optimizer's options built from `settings` (unset fields keep the
// torch defaults). A group that already carries options of that optimizer's type keeps them; a
// group carrying options of another type (e.g. per-layer groups built with torch::optim options)
// keeps only its learning rate, so per-layer learning rates survive a change of optimizer.

#include <memory>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include <tlkit/optim/settings.h>

namespace tlkit::optim {

// Throws tlkit::Error for an unknown name (listing the valid ones), for settings the optimizer
// does not accept, and for invalid values.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const std::string& name, std::vector<torch::optim::OptimizerParamGroup> groups,
    const OptimizerSettings& settings = {});

std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const OptimizerSpec& spec, std::vector<torch::optim::OptimizerParamGroup> groups);

}  // namespace tlkit::optim
