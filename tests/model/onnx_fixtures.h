#pragma once
// Models for the ONNX export tests: tlkit's small VGGs with weights that give confident, varied
// predictions (the exported random-init ones score every class about the same, which would make
// any comparison of probabilities pass), and the models of tests/model/make_onnx_fixtures.py.

#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/model/classifier.h>

#include "model/fixtures.h"

namespace tlkit::test {

// mixed.pt and unsupported.pt from make_onnx_fixtures.py, written once per process.
inline std::filesystem::path onnx_fixture(const std::string& name) {
  static const auto dir = [] {
    const auto out = model_cache_dir() / "onnx";
    const auto result =
        run_command(torch_python() + " " + quoted(source_dir() / "tests/model/make_onnx_fixtures.py") +
                    " --out " + quoted(out));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return out;
  }();
  return dir / name;
}

// Batch-norm statistics and affine parameters away from (0, 1), biases not zero, Linear weights
// at He scale (seeded); then the head is scaled so that the logits on `images` have standard
// deviation `logit_std`.
inline void make_lively(tlkit::model::Classifier& model, const at::Tensor& images,
                        double logit_std = 2.5, std::uint64_t seed = 3) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  const auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (auto& [name, t] : model.state_dict()) {
    if (!t.is_floating_point()) continue;  // num_batches_tracked
    if (ends_with(name, "running_mean")) {
      t.normal_(0, 0.2);
    } else if (ends_with(name, "running_var")) {
      t.uniform_(0.5, 2.0);
    } else if (ends_with(name, "bias")) {
      t.normal_(0, 0.1);
    } else if (t.dim() == 1) {  // a batch-norm scale
      t.uniform_(0.5, 1.5);
    } else if (t.dim() == 2) {
      t.normal_(0, 2.0 / std::sqrt(static_cast<double>(t.size(1))));
    }
  }
  model.train(false);
  const auto spread = model.forward(images).std().item<double>();
  const auto head = model.find_head();
  for (auto& [name, t] : model.named_parameters())
    if (name == head + ".weight" || name == head + ".bias") t.mul_(logit_std / spread);
}

}  // namespace tlkit::test
