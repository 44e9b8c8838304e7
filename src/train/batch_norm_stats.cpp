// update_bn for TorchScript networks: each training-mode aten::batch_norm call's input statistics
// are read through a thread-local operator callback (see batch_norm_stats.h).
#include <tlkit/train/batch_norm_stats.h>

#include <cstring>
#include <map>

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <tlkit/train/batch_source.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/network.h>

namespace tlkit::train {
namespace {

struct LayerSums {
  at::Tensor running_mean, running_var;  // the layer's buffers (written at the end)
  at::Tensor mean_sum, var_sum;          // float64 sums of the batches' statistics
  std::int64_t batches = 0;
};

// Keyed by the running mean's storage: one entry per layer, in first-call order.
thread_local std::map<const void*, LayerSums>* sums = nullptr;

std::unique_ptr<at::ObserverContext> observe(const at::RecordFunction& fn) {
  if (sums == nullptr || std::strcmp(fn.name(), "aten::batch_norm") != 0) return nullptr;
  // batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn)
  const auto inputs = fn.inputs();
  if (inputs.size() < 6 || !inputs[0].isTensor() || !inputs[3].isTensor() ||
      !inputs[4].isTensor() || !inputs[5].isBool() || !inputs[5].toBool())
    return nullptr;
  const auto& mean = inputs[3].toTensor();
  const auto& var = inputs[4].toTensor();
  if (!mean.defined() || !var.defined()) return nullptr;
  const auto x = inputs[0].toTensor().detach().to(at::kDouble).transpose(0, 1).flatten(1);
  auto& layer = (*sums)[mean.data_ptr()];
  if (layer.batches == 0) {
    layer.running_mean = mean;
    layer.running_var = var;
    layer.mean_sum = at::zeros({x.size(0)}, x.options());
    layer.var_sum = at::zeros({x.size(0)}, x.options());
  }
  layer.mean_sum.add_(x.mean(1));
  layer.var_sum.add_(x.var(1, /*unbiased=*/true));
  ++layer.batches;
  return nullptr;
}

}  // namespace

std::int64_t recompute_batch_norm(Network& network, BatchSource& source,
                                  const c10::Device& device) {
  std::map<const void*, LayerSums> layers;
  const bool was_training = network.is_training();
  network.train(true);
  sums = &layers;
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&observe).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  const auto finish = [&] {
    at::removeCallback(handle);
    sums = nullptr;
    network.train(was_training);
  };
  try {
    torch::NoGradGuard no_grad;
    source.start_epoch(0);
    while (auto batch = source.next()) {
      network.forward(batch->inputs.to(device));
      if (layers.empty()) break;  // no batch norm trains: nothing to recompute
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
  if (layers.empty()) return 0;
  auto* comm = world();
  for (auto& [key, layer] : layers) {
    at::Tensor count = at::full({1}, static_cast<double>(layer.batches), layer.mean_sum.options());
    if (source.shards() > 1 && comm != nullptr) {
      std::vector<at::Tensor> parts{layer.mean_sum, layer.var_sum, count};
      comm->allreduce_sum(parts);
      layer.mean_sum = parts[0];
      layer.var_sum = parts[1];
      count = parts[2];
    }
    torch::NoGradGuard no_grad;
    layer.running_mean.copy_(layer.mean_sum / count);
    layer.running_var.copy_(layer.var_sum / count);
  }
  return static_cast<std::int64_t>(layers.size());
}

}  // namespace tlkit::train
