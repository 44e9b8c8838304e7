// Option checks, gradients, state conformance and the versioned archive header.

#include "optimizer_util.h"

#include <cmath>
#include <sstream>

#include <tlkit/optim/state_format.h>

namespace tlkit::optim::detail {

OptionCheck::OptionCheck(const char* optimizer, const std::string& where)
    : prefix_(std::string("tlkit::optim::") + optimizer + " (" + where + "): ") {}

void OptionCheck::non_negative(const char* option, double value) const {
  TLKIT_CHECK(std::isfinite(value) && value >= 0, prefix_, option, " = ", value,
              " is invalid: it must be a finite number >= 0");
}

void OptionCheck::in_range(const char* option, double value, double low, double high,
                           bool high_open) const {
  const bool inside = value >= low && (high_open ? value < high : value <= high);
  TLKIT_CHECK(inside, prefix_, option, " = ", value, " is out of range: it must be in [", low, ", ",
              high, high_open ? ")" : "]");
}

void OptionCheck::require(bool condition, const std::string& what_is_wrong) const {
  TLKIT_CHECK(condition, prefix_, what_is_wrong);
}

std::string defaults_label() { return "defaults"; }

std::string group_label(std::size_t index) { return "param group " + std::to_string(index); }

at::Tensor run_closure(const torch::optim::Optimizer::LossClosure& closure) {
  if (!closure) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

at::Tensor dense_grad(const at::Tensor& param, const char* optimizer, std::size_t group,
                      std::size_t index) {
  const at::Tensor& grad = param.grad();
  if (!grad.defined()) return {};
  TLKIT_CHECK(!grad.is_sparse(), "tlkit::optim::", optimizer, ": parameter ", index,
              " of param group ", group, " has a sparse gradient, which ", optimizer,
              " does not support; use dense gradients (e.g. torch::nn::Embedding with "
              "sparse(false))");
  TLKIT_CHECK(grad.sizes() == param.sizes(), "tlkit::optim::", optimizer, ": parameter ", index,
              " of param group ", group, " has shape ", param.sizes(),
              " but its gradient has shape ", grad.sizes(),
              "; a gradient must have its parameter's shape");
  return grad;
}

at::Tensor conform_state_tensor(const at::Tensor& tensor, const at::Tensor& param, const char* name,
                                const char* optimizer) {
  if (!tensor.defined()) return tensor;
  TLKIT_CHECK(tensor.sizes() == param.sizes(), "tlkit::optim::", optimizer, ": loaded state '",
              name, "' has shape ", tensor.sizes(), " but its parameter has shape ", param.sizes(),
              "; load state saved by an optimizer over the same parameters");
  if (tensor.scalar_type() == param.scalar_type() && tensor.device() == param.device()) {
    return tensor;
  }
  return tensor.to(param.options().requires_grad(false));
}

void write_format_header(torch::serialize::OutputArchive& archive, const char* optimizer) {
  archive.write(kStateFormatVersionKey, c10::IValue(kStateFormatVersion));
  archive.write(kStateOptimizerKey, c10::IValue(std::string(optimizer)));
}

void check_format_header(torch::serialize::InputArchive& archive, const char* optimizer) {
  c10::IValue version;
  TLKIT_CHECK(archive.try_read(kStateFormatVersionKey, version) && version.isInt(),
              "tlkit::optim::", optimizer,
              ": the archive has no tlkit optimizer format version, so it was not written by a "
              "tlkit optimizer (LibTorch's own torch::optim classes use another layout); save the "
              "state with tlkit::optim::",
              optimizer, " (torch::save(optimizer, path))");
  TLKIT_CHECK(version.toInt() == kStateFormatVersion, "tlkit::optim::", optimizer,
              ": the archive has optimizer state format version ", version.toInt(),
              ", but this build reads version ", kStateFormatVersion,
              "; save it again with this version of tlkit");
  c10::IValue saved_by;
  TLKIT_CHECK(archive.try_read(kStateOptimizerKey, saved_by) && saved_by.isString(),
              "tlkit::optim::", optimizer,
              ": the archive does not say which optimizer wrote it; it is damaged, save it again");
  TLKIT_CHECK(saved_by.toStringRef() == optimizer, "tlkit::optim::", optimizer,
              ": the archive holds the state of tlkit::optim::", saved_by.toStringRef(),
              "; load it into a ", saved_by.toStringRef(), " optimizer");
}

void fail_load(const char* optimizer, const c10::Error& error) {
  fail("tlkit::optim::", optimizer,
       ": cannot load the optimizer state: ", error.what_without_backtrace(),
       " (the archive must come from the same optimizer over the same param groups)");
}

}  // namespace tlkit::optim::detail
