#pragma once
// Internal helpers shared by the tlkit optimizers: option checks, the per-step walk over param
// groups, per-parameter state, and the versioned save/load around torch::optim::serialize.

#include <cstddef>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>

#include <tlkit/core/error.h>

namespace tlkit::optim::detail {

// Checks option values; the first bad one is a tlkit::Error such as
// "tlkit::optim::Adam (param group 1): lr = -1 is invalid: it must be >= 0".
class OptionCheck {
 public:
  OptionCheck(const char* optimizer, const std::string& where);
  void non_negative(const char* option, double value) const;
  // value in [low, high) when high_open, else in [low, high].
  void in_range(const char* option, double value, double low, double high, bool high_open) const;
  void require(bool condition, const std::string& what_is_wrong) const;

 private:
  std::string prefix_;
};

std::string defaults_label();                // "defaults"
std::string group_label(std::size_t index);  // "param group 2"

// The options of a group, checked to be of the optimizer's own options type.
template <typename Options>
const Options& options_of(const torch::optim::OptimizerParamGroup& group, const char* optimizer,
                          const std::string& where) {
  const auto* options = dynamic_cast<const Options*>(&group.options());
  TLKIT_CHECK(options != nullptr, "tlkit::optim::", optimizer, " (", where,
              "): the group's options are of another optimizer type; give it tlkit::optim::",
              optimizer, "Options, or no options to use the optimizer's defaults");
  return *options;
}

// Checks the defaults and the options of every group (after the base constructor ran).
template <typename Options, typename Validate>
void validate_all(const torch::optim::Optimizer& optimizer, const char* name,
                  const Validate& validate) {
  validate(static_cast<const Options&>(optimizer.defaults()), OptionCheck(name, defaults_label()));
  const auto& groups = optimizer.param_groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string where = group_label(g);
    validate(options_of<Options>(groups[g], name, where), OptionCheck(name, where));
  }
}

// Checks the options a group brings (if any) before it is added.
template <typename Options, typename Validate>
void validate_new_group(const torch::optim::Optimizer& optimizer,
                        const torch::optim::OptimizerParamGroup& group, const char* name,
                        const Validate& validate) {
  if (!group.has_options()) return;
  const std::string where = group_label(optimizer.param_groups().size());
  validate(options_of<Options>(group, name, where), OptionCheck(name, where));
}

// Runs the closure (when given) with gradients enabled and returns its loss.
at::Tensor run_closure(const torch::optim::Optimizer::LossClosure& closure);

// The gradient of a parameter, undefined when it has none; a sparse gradient or one whose shape
// differs from the parameter's is a tlkit::Error.
at::Tensor dense_grad(const at::Tensor& param, const char* optimizer, std::size_t group,
                      std::size_t index);

// One step over all groups: checks every group's options and every gradient first, then calls
// update(param, grad, options) for each parameter that has a gradient. Returns the closure's loss.
template <typename Options, typename Validate, typename Update>
at::Tensor step_params(torch::optim::Optimizer& optimizer,
                       const torch::optim::Optimizer::LossClosure& closure, const char* name,
                       const Validate& validate, const Update& update) {
  at::Tensor loss = run_closure(closure);
  at::NoGradGuard no_grad;
  struct Work {
    at::Tensor param, grad;
    const Options* options;
  };
  std::vector<Work> work;
  const auto& groups = optimizer.param_groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string where = group_label(g);
    const Options& options = options_of<Options>(groups[g], name, where);
    validate(options, OptionCheck(name, where));
    const auto& params = groups[g].params();
    for (std::size_t i = 0; i < params.size(); ++i) {
      at::Tensor grad = dense_grad(params[i], name, g, i);
      if (grad.defined()) work.push_back({params[i], std::move(grad), &options});
    }
  }
  for (Work& item : work) update(item.param, item.grad, *item.options);
  return loss;
}

// ---------------------------------------------------------------- per-parameter state
// LibTorch keys the state by the parameter's TensorImpl: a string of its address in 1.x, the
// address itself in newer releases.
using StateMap =
    std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;

template <typename Key = typename StateMap::key_type>
Key state_key(const at::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;  // the format of c10::guts::to_string, which LibTorch 1.x uses
    key << param.unsafeGetTensorImpl();
    return key.str();
  } else {
    return param.unsafeGetTensorImpl();
  }
}

// The state of a parameter, created empty on first use.
template <typename State>
State& state_of(torch::optim::Optimizer& optimizer, const at::Tensor& param) {
  auto& slot = optimizer.state()[state_key(param)];
  if (!slot) slot = std::make_unique<State>();
  return static_cast<State&>(*slot);
}

// Calls fn(param, state) for every parameter that has state.
template <typename State, typename Fn>
void for_each_state(torch::optim::Optimizer& optimizer, const Fn& fn) {
  for (auto& group : optimizer.param_groups()) {
    for (const at::Tensor& param : group.params()) {
      auto found = optimizer.state().find(state_key(param));
      if (found != optimizer.state().end() && found->second) {
        fn(param, static_cast<State&>(*found->second));
      }
    }
  }
}

// A loaded state tensor checked against its parameter's shape and moved to its dtype and device
// (as Python's load_state_dict does). Undefined stays undefined.
at::Tensor conform_state_tensor(const at::Tensor& tensor, const at::Tensor& param, const char* name,
                                const char* optimizer);

// ---------------------------------------------------------------- versioned save / load
void write_format_header(torch::serialize::OutputArchive& archive, const char* optimizer);
void check_format_header(torch::serialize::InputArchive& archive, const char* optimizer);
[[noreturn]] void fail_load(const char* optimizer, const c10::Error& error);

template <typename State, typename Options>
void save_optimizer(const torch::optim::Optimizer& optimizer,
                    torch::serialize::OutputArchive& archive, const char* name) {
  write_format_header(archive, name);
  torch::optim::serialize<State, Options>(archive, optimizer);
}

// Loads state and each group's options (as Python's load_state_dict), then validates them.
template <typename State, typename Options, typename Validate>
void load_optimizer(torch::optim::Optimizer& optimizer, torch::serialize::InputArchive& archive,
                    const char* name, const Validate& validate) {
  check_format_header(archive, name);
  try {
    torch::optim::serialize<State, Options>(archive, optimizer);
    torch::serialize::InputArchive groups_archive;
    archive.read("param_groups", groups_archive);
    std::vector<
        std::pair<std::vector<std::string>, std::unique_ptr<torch::optim::OptimizerOptions>>>
        saved_groups;
    torch::optim::detail::serialize<Options>(groups_archive, saved_groups);
    for (std::size_t g = 0; g < saved_groups.size(); ++g) {
      optimizer.param_groups()[g].set_options(std::move(saved_groups[g].second));
    }
  } catch (const c10::Error& error) {
    fail_load(name, error);
  }
  validate_all<Options>(optimizer, name, validate);
}

}  // namespace tlkit::optim::detail
