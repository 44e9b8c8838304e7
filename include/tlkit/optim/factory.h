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

// The weight decay a group's options hold (0 for options of a type that is not a tlkit
// optimizer's), and a setter for it (ignored for such options).
double weight_decay_of(const torch::optim::OptimizerOptions& options);
void set_weight_decay(torch::optim::OptimizerOptions& options, double weight_decay);

}  // namespace tlkit::optim
