#include <tlkit/schedule/momentum.h>

#include <mutex>
#include <vector>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include <tlkit/core/error.h>

namespace tlkit::schedule {
namespace {

struct Registry {
  std::mutex mutex;
  std::vector<MomentumAccessor> accessors;  // searched newest first
};

// LibTorch's own options first, so that later registrations take precedence.
Registry& registry() {
  static Registry* instance = [] {
    auto* created = new Registry;  // never destroyed: usable from static destructors
    created->accessors = {
        momentum_option_accessor<torch::optim::SGDOptions>("torch::optim::SGDOptions"),
        momentum_option_accessor<torch::optim::RMSpropOptions>("torch::optim::RMSpropOptions"),
        beta1_option_accessor<torch::optim::AdamOptions>("torch::optim::AdamOptions"),
        beta1_option_accessor<torch::optim::AdamWOptions>("torch::optim::AdamWOptions")};
    return created;
  }();
  return *instance;
}

std::vector<MomentumAccessor> snapshot() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  return reg.accessors;
}

}  // namespace

void register_momentum_accessor(MomentumAccessor accessor) {
  TLKIT_CHECK(accessor.get && accessor.set, "register_momentum_accessor: '", accessor.name,
              "' needs both a get and a set function");
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  reg.accessors.push_back(std::move(accessor));
}

std::optional<double> get_momentum(const torch::optim::OptimizerOptions& options) {
  const auto accessors = snapshot();
  for (auto it = accessors.rbegin(); it != accessors.rend(); ++it) {
    if (auto value = it->get(options)) return value;
  }
  return std::nullopt;
}

void set_momentum(torch::optim::OptimizerOptions& options, double value) {
  const auto accessors = snapshot();
  for (auto it = accessors.rbegin(); it != accessors.rend(); ++it) {
    if (it->set(options, value)) return;
  }
  fail("this optimizer's options have no momentum or betas that tlkit knows (known: ", momentum_accessor_names(),
       "); register its options class with tlkit::schedule::register_momentum_option<T>() or "
       "register_beta1_option<T>(), or turn cycle_momentum off");
}

std::string momentum_accessor_names() {
  std::string names;
  for (const auto& accessor : snapshot()) names += (names.empty() ? "" : ", ") + accessor.name;
  return names;
}

}  // namespace tlkit::schedule
