// Counting a forward pass's multiply-adds from the operators' input shapes (see flops.h).
#include <tlkit/train/flops.h>

#include <cstring>

#include <ATen/record_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <tlkit/core/error.h>
#include <tlkit/train/network.h>

namespace tlkit::train {
namespace {

// The callback is a plain function: the count lives in a thread-local (the callback is
// registered for this thread only, and the forward pass's operators are recorded on it).
thread_local double multiply_adds = 0;

double numel(c10::IntArrayRef sizes) {
  double n = 1;
  for (const auto s : sizes) n *= static_cast<double>(s);
  return n;
}

const at::Tensor* tensor_at(const at::RecordFunction& fn, size_t i) {
  const auto inputs = fn.inputs();
  if (i >= inputs.size() || !inputs[i].isTensor()) return nullptr;
  const auto& t = inputs[i].toTensor();
  return t.defined() ? &t : nullptr;
}

std::vector<std::int64_t> ints_at(const at::RecordFunction& fn, size_t i, size_t dims) {
  const auto inputs = fn.inputs();
  std::vector<std::int64_t> v;
  if (i < inputs.size() && inputs[i].isIntList()) v = inputs[i].toIntVector();
  if (v.size() == 1 && dims > 1) v.assign(dims, v[0]);
  return v;
}

// aten::convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
// groups): every entry point (conv1d/2d/3d, conv_transpose, _convolution's callers) passes here.
double convolution(const at::RecordFunction& fn) {
  const auto* input = tensor_at(fn, 0);
  const auto* weight = tensor_at(fn, 1);
  if (input == nullptr || weight == nullptr || input->dim() < 3) return 0;
  const auto inputs = fn.inputs();
  const bool transposed = inputs.size() > 6 && inputs[6].isBool() && inputs[6].toBool();
  const auto spatial = static_cast<size_t>(input->dim() - 2);
  const double batch = static_cast<double>(input->size(0));
  // Each weight element meets one input element per output position (per input position for a
  // transposed convolution); the weight holds C_out x C_in/groups x kernel.
  if (transposed) return batch * numel(input->sizes().slice(2)) * numel(weight->sizes());
  const auto stride = ints_at(fn, 3, spatial), padding = ints_at(fn, 4, spatial),
             dilation = ints_at(fn, 5, spatial);
  double positions = 1;
  for (size_t d = 0; d < spatial; ++d) {
    const auto in = input->size(static_cast<std::int64_t>(d + 2));
    const auto k = weight->size(static_cast<std::int64_t>(d + 2));
    const auto s = d < stride.size() ? stride[d] : 1;
    const auto p = d < padding.size() ? padding[d] : 0;
    const auto dl = d < dilation.size() ? dilation[d] : 1;
    const auto out = (in + 2 * p - dl * (k - 1) - 1) / s + 1;
    positions *= static_cast<double>(std::max<std::int64_t>(out, 0));
  }
  return batch * positions * numel(weight->sizes());
}

// (.., n, k) x (.., k, m): n k m multiply-adds per matrix; the batch dimensions broadcast.
double matrix_product(const at::Tensor* a, const at::Tensor* b) {
  if (a == nullptr || b == nullptr || a->dim() < 2 || b->dim() < 2) return 0;
  const auto& larger = a->dim() >= b->dim() ? *a : *b;
  const double batches = numel(larger.sizes().slice(0, larger.dim() - 2));
  return batches * static_cast<double>(a->size(-2)) * static_cast<double>(a->size(-1)) *
         static_cast<double>(b->size(-1));
}

std::unique_ptr<at::ObserverContext> count(const at::RecordFunction& fn) {
  const char* name = fn.name();
  if (std::strcmp(name, "aten::convolution") == 0) {
    multiply_adds += convolution(fn);
  } else if (std::strcmp(name, "aten::mm") == 0 || std::strcmp(name, "aten::bmm") == 0) {
    multiply_adds += matrix_product(tensor_at(fn, 0), tensor_at(fn, 1));
  } else if (std::strcmp(name, "aten::addmm") == 0 || std::strcmp(name, "aten::baddbmm") == 0) {
    multiply_adds += matrix_product(tensor_at(fn, 1), tensor_at(fn, 2));
  }
  return nullptr;
}

}  // namespace

double forward_flops_per_example(Network& network, const torch::Tensor& input) {
  TLKIT_CHECK(input.dim() >= 1 && input.size(0) > 0, "forward_flops_per_example: an empty batch");
  const bool training = network.is_training();
  network.train(false);
  multiply_adds = 0;
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&count).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  try {
    torch::NoGradGuard no_grad;
    network.forward(input);
  } catch (...) {
    at::removeCallback(handle);
    network.train(training);
    throw;
  }
  at::removeCallback(handle);
  network.train(training);
  return 2 * multiply_adds / static_cast<double>(input.size(0));
}

}  // namespace tlkit::train
