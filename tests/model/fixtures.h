#pragma once
// Model fixtures for the tests: small VGG-structured TorchScript files exported by
// scripts/export_vgg16.py at test time (random weights), cached per test process.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/model/classifier.h>

#include "support/test_support.h"

namespace tlkit::test {

// The folder that holds this process's exported models (removed at exit).
inline const std::filesystem::path& model_cache_dir() {
  static const auto dir = std::make_unique<TempDir>();
  return dir->path();
}

// Runs scripts/export_vgg16.py with `args` (e.g. "--arch vgg_tiny --random-init"); the file is
// written once per process and per argument list.
inline std::filesystem::path export_model_file(const std::string& args, const std::string& name) {
  static std::map<std::string, std::filesystem::path> cache;
  const auto key = args + "|" + name;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const auto out = model_cache_dir() / name;
  const auto result =
      run_command(torch_python() + " '" + (source_dir() / "scripts/export_vgg16.py").string() +
                  "' " + args + " --out '" + out.string() + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  cache[key] = out;
  return out;
}

// vgg_tiny (16×16 input, 10 classes, ~1.4K parameters), random weights with seed 0.
inline std::filesystem::path tiny_model() {
  return export_model_file("--arch vgg_tiny --random-init", "tiny.pt");
}

// A copy of the named parameter of `model` (a test failure when there is none).
inline at::Tensor parameter(tlkit::model::Classifier& model, const std::string& name) {
  for (auto& [key, value] : model.named_parameters())
    if (key == name) return value.detach().clone();
  ADD_FAILURE() << "no parameter " << name;
  return {};
}

// Runs a Python snippet with torch; occurrences of {dir} become `dir`.
inline CommandResult run_python(std::string code, const std::filesystem::path& dir) {
  for (auto at = code.find("{dir}"); at != std::string::npos; at = code.find("{dir}"))
    code.replace(at, 5, dir.string());
  const auto file = dir / "snippet.py";
  std::ofstream(file) << "import sys, torch\n" << code;
  return run_command(torch_python() + " '" + file.string() + "'");
}

// Weights that give confident, varied predictions (the exported random-init models score every
// class about the same, which would make any comparison of probabilities pass):
// batch-norm statistics and affine parameters away from (0, 1), biases not zero, Linear weights
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
