#pragma once
// Network: what the trainer needs of a model, whatever it is made of — a TorchScript module (the
// pretrained backbone), a torch::nn module (a head trained on cached features), or a function of
// both. Forward, train/eval mode, parameters, and a named state (parameters + buffers) that
// checkpoints, snapshots and weight averaging copy in and out.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/csrc/jit/api/module.h>
#include <torch/nn/module.h>

namespace tlkit::train {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

class Network {
 public:
  virtual ~Network() = default;
  virtual torch::Tensor forward(const torch::Tensor& input) = 0;
  virtual void train(bool on) = 0;
  virtual bool is_training() const = 0;
  // Every parameter, trainable or frozen, in a stable order.
  virtual std::vector<torch::Tensor> parameters() const = 0;
  // Parameters and buffers by name (the state a checkpoint holds).
  virtual NamedTensors named_state() const = 0;
  virtual void to(const torch::Device& device) = 0;

  std::vector<torch::Tensor> trainable_parameters() const;
  std::int64_t parameter_count(bool trainable_only = false) const;

  // With dropout off, train(true) keeps every Dropout layer in eval mode (the overfit check trains
  // without regularisation). Takes effect at the next train(true).
  void set_dropout(bool enabled) { dropout_ = enabled; }
  bool dropout_enabled() const { return dropout_; }
  // With batch-norm updates off, train(true) keeps every BatchNorm layer in eval mode: its stored
  // statistics normalise, its scale and shift still train. Takes effect at the next train(true).
  void set_batch_norm_updates(bool enabled) { batch_norm_updates_ = enabled; }
  bool batch_norm_updates() const { return batch_norm_updates_; }

 private:
  bool dropout_ = true;
  bool batch_norm_updates_ = true;
};

// A TorchScript module (its forward takes one tensor and returns logits).
class ScriptNetwork : public Network {
 public:
  explicit ScriptNetwork(torch::jit::Module module) : module_(std::move(module)) {}
  torch::Tensor forward(const torch::Tensor& input) override;
  // Train mode, except for leaf modules whose parameters are all frozen (they stay in eval mode).
  void train(bool on) override;
  bool is_training() const override { return module_.is_training(); }
  std::vector<torch::Tensor> parameters() const override;
  NamedTensors named_state() const override;
  void to(const torch::Device& device) override { module_.to(device); }
  torch::jit::Module& module() { return module_; }

 private:
  torch::jit::Module module_;
};

// Some layers of a TorchScript model trained on their own, e.g. the upper layers of a classifier
// trained as a head on cached features: the forward is given as a function, the parameters and
// state are those of the listed modules (named "<layer>.<parameter>"), and train() treats them as
// ScriptNetwork treats its module.
class ScriptLayersNetwork : public Network {
 public:
  ScriptLayersNetwork(std::vector<std::pair<std::string, torch::jit::Module>> layers,
                      std::function<torch::Tensor(const torch::Tensor&)> forward)
      : layers_(std::move(layers)), forward_(std::move(forward)) {}
  torch::Tensor forward(const torch::Tensor& input) override { return forward_(input); }
  void train(bool on) override;
  bool is_training() const override { return training_; }
  std::vector<torch::Tensor> parameters() const override;
  NamedTensors named_state() const override;
  void to(const torch::Device& device) override;

 private:
  std::vector<std::pair<std::string, torch::jit::Module>> layers_;
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
  bool training_ = false;
};

// A torch::nn module with its forward given as a function.
class ModuleNetwork : public Network {
 public:
  ModuleNetwork(std::shared_ptr<torch::nn::Module> module,
                std::function<torch::Tensor(const torch::Tensor&)> forward)
      : module_(std::move(module)), forward_(std::move(forward)) {}
  // For holders with a forward(Tensor) (torch::nn::Sequential, torch::nn::Linear, ...).
  template <typename Holder>
  static std::shared_ptr<ModuleNetwork> from(Holder holder) {
    return std::make_shared<ModuleNetwork>(
        holder.ptr(), [holder](const torch::Tensor& x) mutable { return holder->forward(x); });
  }
  torch::Tensor forward(const torch::Tensor& input) override { return forward_(input); }
  void train(bool on) override;
  bool is_training() const override { return module_->is_training(); }
  std::vector<torch::Tensor> parameters() const override { return module_->parameters(); }
  NamedTensors named_state() const override;
  void to(const torch::Device& device) override { module_->to(device); }
  torch::nn::Module& module() { return *module_; }

 private:
  std::shared_ptr<torch::nn::Module> module_;
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
};

// Deep copies of a network's state (for best-weights, snapshots); copy_state restores them in
// place.
NamedTensors clone_state(const Network& network);
void copy_state(Network& network, const NamedTensors& state);

}  // namespace tlkit::train
