#pragma once
// Checks on a loaded TorchScript model that name a fault before it shows up later as something
// else (a layer walk that does not match, a shape error deep inside LibTorch).
//
// Traced models. torch.jit.trace records the ops one call ran: a dropout or batch-norm layer keeps
// the training flag it had then as a constant, and model.train()/eval() no longer changes it. A
// scripted layer reads its `training` attribute instead. fixed_mode_layers() finds the layers of
// the first kind: a module whose own forward() calls an op with a constant train/training flag and
// reads no `training` attribute.

#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace at {
class Tensor;
}
namespace torch::jit {
struct Module;
}

namespace tlkit::model {

struct FixedModeLayer {
  std::string name;       // "" for the whole model, else the module path ("features.3")
  std::string op;         // "dropout", "batch_norm", ...
  bool training = false;  // the mode it was traced in
};

// The layers whose dropout / batch-norm mode was fixed by torch.jit.trace (empty for a scripted
// model).
std::vector<FixedModeLayer> fixed_mode_layers(const torch::jit::Module& module);

// "'2' (dropout), '6' (dropout)" — the layers for a message (at most a few, then a count).
std::string describe_layers(const std::vector<FixedModeLayer>& layers);

// The one line of a LibTorch error message that says what failed: the last "RuntimeError: ..."
// line of a TorchScript interpreter traceback (without the prefix), else the first line.
std::string short_message(const std::string& what);
// The same for an exception from LibTorch: a c10::Error, or a std::exception such as the
// TorchScript interpreter's.
std::string short_message(const std::exception& error);

// The name of the first floating-point tensor of `tensors` holding a NaN or Inf, or "" when every
// one is finite (one float64 sum per tensor, one device sync).
std::string first_nonfinite(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

// Throws tlkit::Error naming the first parameter or buffer that holds NaN or infinite values.
void check_finite(const torch::jit::Module& module);

}  // namespace tlkit::model
