#pragma once
// Access to the momentum-like coefficient of a param group's options, for schedules that cycle it
// (OneCycleLR): `momentum` for SGD / RMSprop-like options, beta1 of `betas` for Adam-like options,
// as torch's OneCycleLR does with group['momentum'] / group['betas'][0].
//
// LibTorch's SGDOptions, RMSpropOptions, AdamOptions and AdamWOptions are known out of the box
// (found by dynamic_cast). Any other options class whose serialize() writes "momentum" or "betas"
// the LibTorch way (tlkit::optim's do) works too, through a generic path that round-trips the
// options through an archive. That path costs tens of microseconds per call; an options class can
// take the fast path (and a class that serializes differently can be supported) with one line,
// before the schedule is built:
//   tlkit::schedule::register_momentum_option<my::SGDOptions>("my::SGDOptions");   // .momentum()
//   tlkit::schedule::register_beta1_option<my::AdamOptions>("my::AdamOptions");     // .betas()
// or, for anything else, with register_momentum_accessor().

#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include <torch/optim/optimizer.h>

namespace tlkit::schedule {

struct MomentumAccessor {
  std::string name;  // the options class, for messages
  // The coefficient, or nullopt when `options` is not of this accessor's type.
  std::function<std::optional<double>(const torch::optim::OptimizerOptions& options)> get;
  // Sets the coefficient; false when `options` is not of this accessor's type.
  std::function<bool(torch::optim::OptimizerOptions& options, double value)> set;
};

// Adds an accessor; later registrations are tried first. Thread-safe.
void register_momentum_accessor(MomentumAccessor accessor);

// The momentum (or beta1) of `options`, or nullopt when no accessor knows its type.
std::optional<double> get_momentum(const torch::optim::OptimizerOptions& options);
// Sets it; throws tlkit::Error naming the registration functions when no accessor knows the type.
void set_momentum(torch::optim::OptimizerOptions& options, double value);
// Names of the registered options classes (for messages).
std::string momentum_accessor_names();

// An accessor for an options class with a TORCH_ARG-style `double momentum()` / `momentum(double)`.
template <typename Options>
MomentumAccessor momentum_option_accessor(std::string name) {
  return {std::move(name),
          [](const torch::optim::OptimizerOptions& options) -> std::optional<double> {
            if (const auto* typed = dynamic_cast<const Options*>(&options))
              return typed->momentum();
            return std::nullopt;
          },
          [](torch::optim::OptimizerOptions& options, double value) {
            auto* typed = dynamic_cast<Options*>(&options);
            if (typed) typed->momentum(value);
            return typed != nullptr;
          }};
}

// An accessor for an options class with a TORCH_ARG-style `std::tuple<double, double> betas()`;
// it drives beta1 and leaves beta2 alone.
template <typename Options>
MomentumAccessor beta1_option_accessor(std::string name) {
  return {std::move(name),
          [](const torch::optim::OptimizerOptions& options) -> std::optional<double> {
            if (const auto* typed = dynamic_cast<const Options*>(&options))
              return std::get<0>(typed->betas());
            return std::nullopt;
          },
          [](torch::optim::OptimizerOptions& options, double value) {
            auto* typed = dynamic_cast<Options*>(&options);
            if (typed) typed->betas(std::make_tuple(value, std::get<1>(typed->betas())));
            return typed != nullptr;
          }};
}

template <typename Options>
void register_momentum_option(std::string name) {
  register_momentum_accessor(momentum_option_accessor<Options>(std::move(name)));
}

template <typename Options>
void register_beta1_option(std::string name) {
  register_momentum_accessor(beta1_option_accessor<Options>(std::move(name)));
}

}  // namespace tlkit::schedule
