#pragma once
// Polyak / exponential moving average of the weights, for evaluation (Polyak & Juditsky 1992;
// the EMA form as in tf.train.ExponentialMovingAverage):
//   after each optimizer step:  w_avg = beta_t * w_avg + (1 - beta_t) * w
// with w_avg starting as a copy of w. Without warm-up beta_t = decay. With warm-up (as
// TensorFlow's num_updates): beta_t = min(decay, (1 + t) / (10 + t)), t = number of earlier
// updates, so early averages are not dominated by the random start.
//
// Float buffers (BatchNorm running statistics) are copied from the model by default (they are
// already running averages) or averaged like the parameters; integer buffers
// (num_batches_tracked) are always copied. Parameters and buffers of other dtypes are copied.
//
// The EMA works on lists of tensors that share storage with the model, so it serves a
// torch::nn::Module and a torch::jit::Module alike. swap_in() puts the averages into the model
// (the raw weights are kept aside), swap_out() restores the raw weights bit for bit; SwapGuard
// does both around a scope:
//   tlkit::train::ExponentialMovingAverage ema(model, tlkit::train::EMAOptions().decay(0.999));
//   ... optimizer.step(); ema.update(); ...
//   { tlkit::train::ExponentialMovingAverage::SwapGuard averaged(ema); evaluate(model); }

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

namespace torch {
namespace nn {
class Module;
}
namespace jit {
struct Module;
}
namespace serialize {
class OutputArchive;
class InputArchive;
}  // namespace serialize
}  // namespace torch

namespace tlkit::train {

// Version of the archive layout written by ExponentialMovingAverage::save().
constexpr std::int64_t kEmaFormatVersion = 1;

enum class EMABufferMode { kCopy, kAverage };

struct EMAOptions {
  TORCH_ARG(double, decay) = 0.999;
  TORCH_ARG(bool, warmup) = false;
  TORCH_ARG(EMABufferMode, buffers) = EMABufferMode::kCopy;
  // Only parameters with requires_grad (frozen ones never change, so need no average).
  TORCH_ARG(bool, trainable_only) = false;
};

class ExponentialMovingAverage {
 public:
  ExponentialMovingAverage(std::vector<at::Tensor> parameters, std::vector<at::Tensor> buffers,
                           EMAOptions options = {});
  explicit ExponentialMovingAverage(const torch::nn::Module& module, EMAOptions options = {});
  explicit ExponentialMovingAverage(const torch::jit::Module& module, EMAOptions options = {});
  ~ExponentialMovingAverage();
  ExponentialMovingAverage(const ExponentialMovingAverage&) = delete;
  ExponentialMovingAverage& operator=(const ExponentialMovingAverage&) = delete;

  // Folds the current weights into the averages; call after each optimizer step.
  void update();
  // The beta the next update() will use.
  double next_decay() const;
  std::int64_t num_updates() const { return num_updates_; }
  const EMAOptions& options() const { return options_; }

  // Averaged parameters, then averaged (or copied) buffers, in construction order.
  const std::vector<at::Tensor>& averages() const { return averages_; }

  // Puts the averages into the model; throws when already swapped in.
  void swap_in();
  // Restores the raw weights exactly; throws when not swapped in.
  void swap_out();
  bool swapped_in() const { return swapped_; }
  // Copies the averages into the model for good (e.g. before export); not undone by swap_out.
  void copy_to_model();

  // Writes / reads the averages and the update count with a format version; load() requires the
  // same number, shapes and dtypes of tensors.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

  // swap_in() now, swap_out() at the end of the scope.
  class SwapGuard {
   public:
    explicit SwapGuard(ExponentialMovingAverage& ema) : ema_(ema) { ema_.swap_in(); }
    ~SwapGuard() { ema_.swap_out(); }
    SwapGuard(const SwapGuard&) = delete;
    SwapGuard& operator=(const SwapGuard&) = delete;

   private:
    ExponentialMovingAverage& ema_;
  };

 private:
  bool averaged(std::size_t index) const;

  EMAOptions options_;
  std::vector<at::Tensor> targets_;  // model tensors: parameters, then buffers
  std::size_t num_parameters_ = 0;
  std::vector<at::Tensor> averages_;  // same order as targets_
  std::vector<at::Tensor> raw_;       // the model's own values while swapped in
  std::int64_t num_updates_ = 0;
  bool swapped_ = false;
};

using EMA = ExponentialMovingAverage;

}  // namespace tlkit::train
