#pragma once
// Small fixtures for the trainer tests: a synthetic 3-class problem and a tiny MLP with dropout.

#include <memory>

#include <torch/torch.h>

#include <tlkit/train/batch_source.h>
#include <tlkit/train/network.h>

namespace tlkit::test {

// Three Gaussian blobs in 4-D; seeded, so every call gives the same data.
inline std::pair<torch::Tensor, torch::Tensor> blobs(std::int64_t per_class, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto centres =
      torch::tensor({{2.0, 0.0, 0.0, 1.0}, {-2.0, 1.0, 0.0, 0.0}, {0.0, -2.0, 1.5, -1.0}});
  std::vector<torch::Tensor> xs, ys;
  for (std::int64_t c = 0; c < 3; ++c) {
    xs.push_back(centres[c] +
                 at::randn({per_class, 4}, generator, at::TensorOptions().dtype(at::kFloat)));
    ys.push_back(torch::full({per_class}, c, torch::kLong));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

struct TinyMlp : torch::nn::Module {
  TinyMlp() {
    fc1 = register_module("fc1", torch::nn::Linear(4, 16));
    drop = register_module("drop", torch::nn::Dropout(0.2));
    fc2 = register_module("fc2", torch::nn::Linear(16, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(drop(torch::relu(fc1(x)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};

inline std::shared_ptr<train::ModuleNetwork> tiny_network(std::uint64_t seed) {
  torch::manual_seed(seed);
  auto mlp = std::make_shared<TinyMlp>();
  return std::make_shared<train::ModuleNetwork>(
      mlp, [mlp](const torch::Tensor& x) { return mlp->forward(x); });
}

}  // namespace tlkit::test
