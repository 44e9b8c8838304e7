#pragma once
// Shared by the tlkit::optim tests: the Python torch.optim reference trajectories written by
// scripts/gen_optim_reference.py, the two problems they come from (rebuilt here with the same
// tensor ops, so gradients are the same numbers), and the checks every optimizer goes through.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/optim.h>

#include "support/test_support.h"

namespace tlkit::test::optim {

using OptimizerPtr = std::unique_ptr<torch::optim::Optimizer>;
using Groups = std::vector<torch::optim::OptimizerParamGroup>;

// Relative tolerances (max-norm of the difference over max-norm of the reference, at every step).
inline double tolerance_for(at::ScalarType dtype) { return dtype == at::kDouble ? 1e-9 : 1e-5; }

// ---------------------------------------------------------------- the reference file
inline const c10::impl::GenericDict& reference() {
  static const c10::impl::GenericDict dict = [] {
    const auto path = test_data_dir() / "optim_reference.pt";
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("missing " + path.string() + "; build target tlkit_reference_data");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return torch::pickle_load(bytes).toGenericDict();
  }();
  return dict;
}
inline c10::IValue ref_value(const std::string& key) { return reference().at(key); }

inline std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  return parts;
}

// Reference cases whose name starts with prefix, e.g. "adam/".
inline std::vector<std::string> reference_cases(const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& name : split(ref_value("case_names").toStringRef(), ',')) {
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  return names;
}

inline std::string dtype_name(at::ScalarType dtype) {
  return dtype == at::kDouble ? "float64" : "float32";
}

// ---------------------------------------------------------------- the problems
// "lsq": mean squared error of X·Wᵀ + b (groups [W] | [b]); "mlp": of tanh(X·W1ᵀ + b1)·W2ᵀ + b2
// (groups [W1, b1] | [W2, b2]). Step t uses mini-batch t mod (rows / batch), as in the script.
struct Problem {
  std::string name;
  at::Tensor X, Y;
  std::vector<at::Tensor> params;
  std::int64_t batch = 16;

  static Problem reference_problem(const std::string& name, at::ScalarType dtype) {
    Problem problem;
    problem.name = name;
    const std::string prefix = "problem/" + name + "/" + dtype_name(dtype);
    problem.X = ref_value(prefix + "/X").toTensor();
    problem.Y = ref_value(prefix + "/Y").toTensor();
    problem.batch = ref_value("batch").toInt();
    const std::size_t count = name == "lsq" ? 2 : 4;
    for (std::size_t i = 0; i < count; ++i) {
      problem.params.push_back(
          ref_value(prefix + "/init/" + std::to_string(i)).toTensor().clone().requires_grad_(true));
    }
    return problem;
  }

  at::Tensor loss(std::int64_t step) const {
    const std::int64_t first = (step % (X.size(0) / batch)) * batch;
    const auto rows = torch::arange(first, first + batch, torch::kInt64);
    const at::Tensor x = X.index_select(0, rows), y = Y.index_select(0, rows);
    if (name == "lsq") return (x.matmul(params[0].t()) + params[1] - y).pow(2).mean();
    const at::Tensor hidden = torch::tanh(x.matmul(params[0].t()) + params[1]);
    return (hidden.matmul(params[2].t()) + params[3] - y).pow(2).mean();
  }

  Groups groups() const {
    const std::size_t split_at = name == "lsq" ? 1 : 2;
    return {torch::optim::OptimizerParamGroup(
                std::vector<at::Tensor>(params.begin(), params.begin() + split_at)),
            torch::optim::OptimizerParamGroup(
                std::vector<at::Tensor>(params.begin() + split_at, params.end()))};
  }

  at::Tensor flat() const {
    std::vector<at::Tensor> parts;
    for (const auto& p : params) parts.push_back(p.detach().flatten());
    return torch::cat(parts);
  }

  // Replaces every parameter by a strided (non-contiguous) leaf with the same values: matrices
  // become transposed copies viewed back, vectors every other element of a longer buffer.
  void make_params_strided() {
    for (auto& p : params) {
      const at::Tensor value = p.detach();
      at::Tensor strided = value.dim() == 2 ? value.t().contiguous().t()
                                            : torch::zeros({2 * value.numel()}, value.options())
                                                  .slice(0, 0, 2 * value.numel(), 2);
      if (value.dim() != 2) strided.copy_(value);
      p = strided.detach().requires_grad_(true);
    }
  }

  // A copy whose parameters are fresh leaves with the current values.
  Problem copy() const {
    Problem other = *this;
    for (auto& p : other.params) p = p.detach().clone().requires_grad_(true);
    return other;
  }
};

// One optimizer step on the mini-batch of `step`.
inline void train_step(Problem& problem, torch::optim::Optimizer& optimizer, std::int64_t step) {
  optimizer.zero_grad();
  problem.loss(step).backward();
  optimizer.step();
}

// [steps, n] parameters after each step, starting at step index `first`.
inline at::Tensor run_steps(Problem& problem, torch::optim::Optimizer& optimizer,
                            std::int64_t first, std::int64_t steps) {
  std::vector<at::Tensor> rows;
  if (steps == 0) return torch::empty({0, problem.flat().numel()}, problem.X.options());
  for (std::int64_t t = first; t < first + steps; ++t) {
    train_step(problem, optimizer, t);
    rows.push_back(problem.flat());
  }
  return torch::stack(rows);
}

// The optimizer of a reference case, built by name, with group 1 at the reference's lr ratio.
inline OptimizerPtr make_case_optimizer(const std::string& case_name, const Problem& problem) {
  const auto spec = tlkit::optim::parse_optimizer_settings(
      ref_value("case/" + case_name + "/spec").toStringRef());
  OptimizerPtr optimizer = tlkit::optim::make_optimizer(spec, problem.groups());
  auto& groups = optimizer->param_groups();
  groups[1].options().set_lr(groups[0].options().get_lr() *
                             ref_value("group1_lr_ratio").toDouble());
  return optimizer;
}

// Largest relative max-norm error over the steps.
inline double trajectory_error(const at::Tensor& ours, const at::Tensor& expected) {
  const auto diff = (ours.to(at::kDouble) - expected.to(at::kDouble)).abs().amax(1);
  const auto scale = expected.to(at::kDouble).abs().amax(1).clamp_min(1e-30);
  return (diff / scale).max().item<double>();
}

// ---------------------------------------------------------------- checks
struct ReferenceRun {
  tlkit::optim::KernelMode mode = tlkit::optim::KernelMode::kAuto;
  bool strided_params = false;  // non-contiguous parameters: the tensor-op path
};

// Every reference case under prefix, both problems, both dtypes.
template <typename Expected>
void expect_matches_reference(const std::string& prefix, ReferenceRun run = {}) {
  using tlkit::optim::KernelMode;
  tlkit::optim::ScopedKernelMode scoped(run.mode);
  // kAuto takes LibTorch's fused kernel for Adam, AdamW and SGD where LibTorch has one (2.x),
  // but not for AMSGrad (its fused maximum drops NaN; tlkit's kernel keeps torch.optim's rule).
  const bool has_torch_kernel = prefix == "adam/" || prefix == "adamw/" || prefix == "sgd/";
  const auto torch_fused_expected_for = [&](const std::string& name) {
    return run.mode == KernelMode::kTorchFused ||
           (run.mode == KernelMode::kAuto && !run.strided_params && has_torch_kernel &&
            name.find("amsgrad") == std::string::npos &&
            tlkit::optim::torch_fused_kernels_available());
  };
  const auto cases = reference_cases(prefix);
  ASSERT_FALSE(cases.empty()) << "no reference cases named " << prefix << "*";
  const std::int64_t steps = ref_value("steps").toInt();
  double worst64 = 0, worst32 = 0;
  for (const auto& name : cases) {
    for (const std::string problem_name : {"lsq", "mlp"}) {
      for (const auto dtype : {at::kDouble, at::kFloat}) {
        Problem problem = Problem::reference_problem(problem_name, dtype);
        if (run.strided_params) problem.make_params_strided();
        OptimizerPtr optimizer = make_case_optimizer(name, problem);
        const bool torch_fused_expected = torch_fused_expected_for(name);
        const bool fused_expected =
            (run.mode == KernelMode::kAuto || run.mode == KernelMode::kOwn) &&
            !run.strided_params && !torch_fused_expected;
        ASSERT_NE(dynamic_cast<Expected*>(optimizer.get()), nullptr) << name;
        const auto fused_before = tlkit::optim::fused_update_count();
        const auto foreach_before = tlkit::optim::foreach_update_count();
        const auto torch_fused_before = tlkit::optim::torch_fused_update_count();
        const at::Tensor ours = run_steps(problem, *optimizer, 0, steps);
        const auto fused = tlkit::optim::fused_update_count() - fused_before;
        const auto updates = static_cast<std::uint64_t>(steps) * problem.params.size();
        EXPECT_EQ(fused, fused_expected ? updates : 0)
            << name << ": updates done by the fused kernel";
        const auto foreach = tlkit::optim::foreach_update_count() - foreach_before;
        EXPECT_EQ(foreach, run.mode == tlkit::optim::KernelMode::kForeach ? updates : 0)
            << name << ": updates done by the foreach path";
        const auto torch_fused = tlkit::optim::torch_fused_update_count() - torch_fused_before;
        EXPECT_EQ(torch_fused, torch_fused_expected ? updates : 0)
            << name << ": updates done by LibTorch's fused kernels";
        const auto key = "case/" + name + "/" + problem_name + "/" + dtype_name(dtype);
        const double error = trajectory_error(ours, ref_value(key).toTensor());
        EXPECT_LE(error, tolerance_for(dtype)) << key;
        double& worst = dtype == at::kDouble ? worst64 : worst32;
        worst = std::max(worst, error);
      }
    }
  }
  std::cout << "[ reference ] " << prefix << "* (" << cases.size() << " cases x 2 problems x "
            << steps << " steps): worst relative error float64 " << worst64 << ", float32 "
            << worst32 << "\n";
}

// Save mid-way, load into a fresh optimizer over copies of the parameters, step both: identical.
inline void expect_save_load_resumes_exactly(const std::string& prefix) {
  const auto cases = reference_cases(prefix);
  ASSERT_FALSE(cases.empty());
  for (const auto& name : cases) {
    for (const std::int64_t saved_at : {0, 37}) {
      Problem original = Problem::reference_problem("mlp", at::kDouble);
      OptimizerPtr first = make_case_optimizer(name, original);
      run_steps(original, *first, 0, saved_at);
      TempDir dir;
      const auto path = (dir / "optimizer.pt").string();
      torch::save(*first, path);
      Problem resumed = original.copy();
      OptimizerPtr second = make_case_optimizer(name, resumed);
      second->param_groups()[0].options().set_lr(123.0);  // load restores the saved options
      torch::load(*second, path);
      EXPECT_EQ(second->state().size(), first->state().size()) << name;
      const at::Tensor a = run_steps(original, *first, saved_at, 25);
      const at::Tensor b = run_steps(resumed, *second, saved_at, 25);
      EXPECT_TRUE(torch::equal(a, b)) << name << " saved after " << saved_at << " steps: max diff "
                                      << (a - b).abs().max().item<double>();
    }
  }
}

// An archive from another optimizer, from LibTorch's own optimizer, or with another format
// version is a tlkit::Error naming the problem.
inline void expect_rejects_foreign_archives(const std::function<OptimizerPtr(Groups)>& make_ours,
                                            const std::function<OptimizerPtr(Groups)>& make_torch,
                                            const std::function<OptimizerPtr(Groups)>& make_other) {
  Problem problem = Problem::reference_problem("lsq", at::kDouble);
  TempDir dir;
  auto expect_load_error = [&](const std::string& path, const std::string& words) {
    OptimizerPtr ours = make_ours(problem.groups());
    try {
      torch::load(*ours, path);
      ADD_FAILURE() << "loading " << path << " did not throw";
    } catch (const tlkit::Error& error) {
      EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
    }
  };
  for (const auto& [make, file] :
       {std::pair{make_torch, "torch.pt"}, std::pair{make_other, "other.pt"}}) {
    OptimizerPtr optimizer = make(problem.groups());
    train_step(problem, *optimizer, 0);
    torch::save(*optimizer, (dir / file).string());
  }
  expect_load_error((dir / "torch.pt").string(), "format version");
  expect_load_error((dir / "other.pt").string(), "holds the state of");
  torch::serialize::OutputArchive future;
  future.write(tlkit::optim::kStateFormatVersionKey, c10::IValue(std::int64_t{99}));
  future.save_to((dir / "future.pt").string());
  expect_load_error((dir / "future.pt").string(), "version 99");
}

// A sparse gradient is a tlkit::Error; a parameter without gradient is left alone (no state).
inline void expect_sparse_error_and_skips_missing_grads(
    const std::function<OptimizerPtr(std::vector<at::Tensor>)>& make) {
  auto dense = torch::ones({4}, torch::kFloat64).requires_grad_(true);
  auto untouched = torch::ones({3}, torch::kFloat64).requires_grad_(true);
  OptimizerPtr optimizer = make({dense, untouched});
  (dense * dense).sum().backward();
  optimizer->step();
  EXPECT_FALSE(torch::equal(dense, torch::ones({4}, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(untouched, torch::ones({3}, torch::kFloat64)));
  EXPECT_FALSE(untouched.grad().defined());
  EXPECT_LE(optimizer->state().size(), 1u);

  auto sparse = torch::ones({5}, torch::kFloat64).requires_grad_(true);
  OptimizerPtr sparse_optimizer = make({sparse});
  sparse.mutable_grad() = torch::sparse_coo_tensor(
      torch::tensor({{1, 3}}, torch::kInt64), torch::tensor({0.5, -1.0}, torch::kFloat64), {5});
  try {
    sparse_optimizer->step();
    ADD_FAILURE() << "a sparse gradient did not throw";
  } catch (const tlkit::Error& error) {
    EXPECT_NE(std::string(error.what()).find("sparse"), std::string::npos) << error.what();
  }
}

// Each constructor call must throw a tlkit::Error whose message names the option.
inline void expect_option_error(const std::function<void()>& build, const std::string& option) {
  try {
    build();
    ADD_FAILURE() << "no error for a bad " << option;
  } catch (const tlkit::Error& error) {
    EXPECT_NE(std::string(error.what()).find(option), std::string::npos) << error.what();
  }
}

// Group options are checked: a group added with bad options, a group with options of another
// optimizer type, and options made invalid after construction (caught at the next step).
template <typename Optimizer, typename Options, typename ForeignOptions>
void expect_group_checks(const Options& good, const Options& bad, const std::string& bad_option) {
  auto a = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  auto b = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  Optimizer optimizer(std::vector<at::Tensor>{a}, good);
  expect_option_error(
      [&] {
        optimizer.add_param_group(
            torch::optim::OptimizerParamGroup({b}, std::make_unique<Options>(bad)));
      },
      bad_option);
  EXPECT_EQ(optimizer.param_groups().size(), 1u);
  expect_option_error(
      [&] {
        Optimizer other(
            Groups{torch::optim::OptimizerParamGroup({b}, std::make_unique<ForeignOptions>(0.1))},
            good);
      },
      "another optimizer type");
  optimizer.add_param_group(torch::optim::OptimizerParamGroup({b}));
  (a * b).sum().backward();
  optimizer.param_groups()[1].options().set_lr(-1);
  expect_option_error([&] { optimizer.step(); }, "param group 1): lr = -1");
}

// The optimizer fits the float32 least-squares problem (full batch): final loss below threshold.
inline void expect_converges(const std::function<OptimizerPtr(std::vector<at::Tensor>)>& make,
                             int steps, double threshold) {
  Problem problem = Problem::reference_problem("lsq", at::kFloat);
  problem.batch = problem.X.size(0);
  OptimizerPtr optimizer = make(problem.params);
  const double initial = problem.loss(0).item<double>();
  for (int t = 0; t < steps; ++t) train_step(problem, *optimizer, t);
  const double final_loss = problem.loss(0).item<double>();
  EXPECT_LT(final_loss, threshold) << "initial loss " << initial;
  EXPECT_LT(final_loss, initial / 20) << "initial loss " << initial;
}

}  // namespace tlkit::test::optim
