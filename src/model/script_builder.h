#pragma once
// Builds TorchScript modules in C++ (no Python): each module is a class of one compilation unit,
// named like its torch.nn / torchvision counterpart (type names are what tlkit's layer walk
// reads: "Sequential" is entered, "Dropout" is skipped, "Linear" / "BatchNorm2d" are recognised),
// with its parameters and buffers registered under torch's names and a forward() compiled from
// TorchScript source. Parameters start as zeros of their shape: the weights are copied in later.
// The modules save() to files that Python's torch.jit.load runs.

#include <memory>
#include <string>
#include <vector>

#include <torch/script.h>

namespace tlkit::model::detail {

enum class Activation { None, ReLU, Hardswish, Hardsigmoid, SiLU, Sigmoid };

struct ConvSpec {
  std::int64_t in = 0, out = 0, kernel = 1, stride = 1, padding = 0, groups = 1;
  bool bias = false;
};

class ScriptBuilder {
 public:
  ScriptBuilder();

  // An empty module of class `__torch__.<cls>` with a `training` attribute; define its forward()
  // after its children are registered.
  torch::jit::Module make(const std::string& cls);

  torch::jit::Module conv(const ConvSpec& spec);
  torch::jit::Module batch_norm(std::int64_t channels, double eps = 1e-5, double momentum = 0.1);
  torch::jit::Module linear(std::int64_t in, std::int64_t out);
  torch::jit::Module activation(Activation kind);
  torch::jit::Module max_pool(std::int64_t kernel, std::int64_t stride, std::int64_t padding);
  torch::jit::Module adaptive_avg_pool(std::int64_t size);
  torch::jit::Module dropout(double p);
  // Children "0", "1", ... run in order; `cls` names a Sequential subclass (e.g. torchvision's
  // Conv2dNormActivation), which tlkit's layer walk then treats as one layer.
  torch::jit::Module sequential(const std::vector<torch::jit::Module>& children,
                                const std::string& cls = "torch.nn.modules.container.Sequential");
  // torchvision's Conv2dNormActivation: conv (no bias), BatchNorm2d, optional activation.
  torch::jit::Module conv_norm_act(const ConvSpec& spec, Activation act, double eps = 1e-5,
                                   double momentum = 0.1);

 private:
  std::shared_ptr<torch::jit::CompilationUnit> unit_;
};

// A TorchScript float literal ("0.001").
std::string script_float(double value);

}  // namespace tlkit::model::detail
