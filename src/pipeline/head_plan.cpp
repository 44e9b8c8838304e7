#include <tlkit/pipeline/head_plan.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spdlog/fmt/fmt.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>
#include <tlkit/core/threads.h>
#include <tlkit/pipeline/logistic.h>

namespace tlkit::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The typical time of a few runs of `run` (returning its seconds): at least `min_runs`, then more
// while under a second in all, at most 5; the median (of an even count the lower middle one, so
// of two the second run unless the first was faster). On a busy machine one run of a short step
// can take many times its cost, and threads that wait for each other lose time on every run:
// the median keeps the second and drops the first.
template <class Run>
double typical(Run run, int min_runs) {
  std::vector<double> runs{run()};
  double total = runs.front();
  while (runs.size() < 5 && (static_cast<int>(runs.size()) < min_runs || total < 1.0)) {
    runs.push_back(run());
    total += runs.back();
  }
  std::sort(runs.begin(), runs.end());
  return runs[(runs.size() - 1) / 2];
}

std::string format_seconds(double s) {
  return s < 10 ? fmt::format("{:.1f} s", s) : fmt::format("{:.0f} s", s);
}

std::string format_bytes(double bytes) {
  const double mib = bytes / (1024.0 * 1024);
  return mib < 1024 ? fmt::format("{:.0f} MiB", mib) : fmt::format("{:.1f} GiB", mib / 1024);
}

// A fixed, RNG-free input (the user's random streams stay as they are).
at::Tensor probe(std::vector<std::int64_t> shape, c10::ScalarType dtype, c10::Device device) {
  const auto numel =
      std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  return at::sin(at::arange(numel, at::TensorOptions().dtype(dtype)) * 0.37)
      .reshape(shape)
      .to(device);
}

const model::Layer& layer_named(const std::vector<model::Layer>& layers, const std::string& name) {
  const auto it = std::find_if(layers.begin(), layers.end(),
                               [&name](const model::Layer& l) { return l.name == name; });
  TLKIT_CHECK(it != layers.end(), "no layer named '", name, "' in the model");
  return *it;
}

// The model in train or eval mode while it is timed, as it was afterwards.
class ModeWhileTimed {
 public:
  ModeWhileTimed(model::Classifier& model, bool training)
      : model_(model), was_training_(model.is_training()) {
    model_.train(training);
  }
  ~ModeWhileTimed() { model_.train(was_training_); }

 private:
  model::Classifier& model_;
  bool was_training_;
};

// The head's parameters require gradients while it is timed; their flags come back afterwards.
class TrainableWhileTimed {
 public:
  TrainableWhileTimed(const model::Classifier& model, const std::string& head) {
    for (const auto& [name, module] : model.layers_from(head))
      for (const auto& p : module.parameters()) {
        params_.push_back(p);
        flags_.push_back(p.requires_grad());
        params_.back().requires_grad_(true);
      }
  }
  ~TrainableWhileTimed() {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].requires_grad_(flags_[i]);
  }
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  std::vector<at::Tensor> params_;
  std::vector<bool> flags_;
};

// Returns when the device has computed `outputs` (an accelerator runs asynchronously).
void wait_for(const std::vector<at::Tensor>& outputs) {
  for (const auto& t : outputs)
    if (t.defined() && t.numel() > 0 && !t.is_cpu()) {
      t.reshape(-1)[0].item<float>();
      return;
    }
}

// The model on `device` while it is timed, back where it was afterwards.
class DeviceWhileTimed {
 public:
  DeviceWhileTimed(model::Classifier& model, c10::Device device)
      : model_(model), before_(model.device()) {
    if (device != before_) model_.to(device);
  }
  ~DeviceWhileTimed() {
    if (model_.device() != before_) model_.to(before_);
  }
  DeviceWhileTimed(const DeviceWhileTimed&) = delete;
  DeviceWhileTimed& operator=(const DeviceWhileTimed&) = delete;

 private:
  model::Classifier& model_;
  c10::Device before_;
};

// One forward and backward of the layers from `head` on a batch of `batch` inputs.
double time_step(model::Classifier& model, const std::string& head,
                 const std::vector<at::Tensor>& params, std::int64_t batch) {
  auto shape = model.input_shape(head);
  shape[0] = batch;
  const auto input = probe(shape, at::kFloat, model.device());
  at::AutoGradMode grad_mode(true);
  const auto start = Clock::now();
  const auto out = model.forward_from(input, head);
  const auto grads = torch::autograd::grad({out.sum()}, params, {}, false, false, true);
  wait_for(grads);
  return seconds_since(start);
}

// One L-BFGS iteration of the exact head on a problem of rows x dim (float64, as it is solved).
double time_logistic_iteration(std::int64_t rows, std::int64_t dim, std::int64_t classes) {
  const auto x = probe({rows, dim}, at::kDouble, c10::kCPU);
  const auto y = at::arange(rows, at::kLong).remainder(classes);
  LogisticOptions options;
  options.max_iter = 10;
  options.tolerance_grad = 0;
  options.tolerance_change = 0;
  return typical(
      [&] {
        const auto start = Clock::now();
        const auto fit = fit_logistic(x, y, classes, options);
        return seconds_since(start) /
               static_cast<double>(std::max<std::int64_t>(1, fit.iterations));
      },
      1);
}

}  // namespace

std::string HeadCost::work() const {
  if (!exact) return fmt::format("{} steps x {} fits", steps, fits);
  if (settings <= 1) return fmt::format("exact, {} fit{}", fits, fits == 1 ? "" : "s");
  if (folds >= 2) return fmt::format("exact, {} L2 x {} folds + 1 fits", settings, folds);
  return fmt::format("exact, {} L2 fits", settings);
}

HeadBudget head_budget(double pass_seconds, std::int64_t images, double min_seconds) {
  HeadBudget budget;
  if (pass_seconds >= min_seconds) {
    budget.train_seconds = pass_seconds;
    budget.why = fmt::format("one backbone pass over {} images", images);
  } else {
    budget.train_seconds = min_seconds;
    budget.why = fmt::format("the {} minimum", format_seconds(min_seconds));
  }
  return budget;
}

std::vector<std::string> HeadPlan::heads() const {
  std::vector<std::string> names;
  for (const auto& c : kept) names.push_back(c.head);
  return names;
}

std::vector<std::string> HeadPlan::feature_layers() const {
  std::vector<std::string> layers;
  for (const auto& c : kept)
    if (std::find(layers.begin(), layers.end(), c.feature_layer) == layers.end())
      layers.push_back(c.feature_layer);
  return layers;
}

double HeadPlan::train_seconds() const {
  double total = 0;
  for (const auto& c : kept) total += c.train_seconds();
  return total;
}

std::string HeadPlan::describe() const {
  std::vector<std::string> parts;
  for (const auto& c : kept)
    parts.push_back(
        fmt::format("{} ({}, ~{})", c.head, c.work(), format_seconds(c.train_seconds())));
  for (const auto& [c, why] : dropped) parts.push_back(fmt::format("{} dropped ({})", c.head, why));
  return join(parts, ", ");
}

HeadPlan plan_heads(const std::vector<HeadCost>& costs, const HeadBudget& budget) {
  HeadPlan plan;
  plan.budget = budget;
  for (size_t i = 0; i < costs.size(); ++i) {
    const auto& c = costs[i];
    if (i == 0) {
      plan.kept.push_back(c);
    } else if (c.cache_bytes > budget.cache_bytes) {
      plan.dropped.emplace_back(
          c, fmt::format("{} of cached features > {} in memory", format_bytes(c.cache_bytes),
                         format_bytes(budget.cache_bytes)));
    } else if (c.train_seconds() > budget.train_seconds) {
      plan.dropped.emplace_back(
          c, fmt::format("{}{} of head training ({}) > budget {}", c.lower_bound ? ">= " : "~",
                         format_seconds(c.train_seconds()), c.work(),
                         format_seconds(budget.train_seconds)));
    } else {
      plan.kept.push_back(c);
    }
  }
  return plan;
}

HeadCost measure_head(model::Classifier& model, const std::string& head, const HeadWork& work,
                      double budget_seconds) {
  const auto layers = model.layers();
  const auto& first = layer_named(layers, head);
  HeadCost cost;
  cost.head = head;
  cost.feature_layer = model.feature_layer_for(head);
  const auto shape = model.input_shape(head);
  TLKIT_CHECK(!shape.empty(), "the input shape of layer '", head, "' is unknown");
  cost.feature_dim =
      std::accumulate(shape.begin() + 1, shape.end(), std::int64_t{1}, std::multiplies<>());
  cost.cache_bytes = 4.0 * static_cast<double>(work.images) * static_cast<double>(cost.feature_dim);
  cost.exact = work.exact_solver && head == model.find_head() && first.type == "Linear";
  if (cost.exact) {
    cost.settings = work.choose_l2 ? work.l2_strengths : 1;
    cost.folds = work.folds >= 2 ? work.folds : 0;
    cost.fits = !work.choose_l2   ? 1
                : cost.folds >= 2 ? cost.settings * cost.folds + 1
                                  : cost.settings;
    cost.steps = work.exact_iterations;
    // Solved in the row space when there are fewer images than features.
    const auto rows = std::max<std::int64_t>(1, work.train_images);
    cost.step_seconds = time_logistic_iteration(rows, std::min(rows, cost.feature_dim),
                                                std::max<std::int64_t>(2, work.classes));
    return cost;
  }
  cost.folds = work.folds >= 2 ? work.folds : 0;
  cost.fits = cost.folds + 1;
  cost.steps = work.steps;
  // Eval mode: dropout draws no random numbers, batch norm's running statistics stay as they are.
  const DeviceWhileTimed on_device(model, work.device);
  ModeWhileTimed mode(model, false);
  TrainableWhileTimed trainable(model, head);
  const auto step = [&](std::int64_t batch) {
    return [&model, &head, &trainable, batch] {
      return time_step(model, head, trainable.params(), batch);
    };
  };
  const int threads = at::get_num_threads();
  // One image on one thread first: N threads are at most N times faster, so when that alone puts
  // the head over the budget it is dropped.
  double single = 0;
  {
    const ScopedThreads one(1);
    single = typical(step(1), 2);
  }
  cost.step_seconds = single / threads;
  if (work.batch_size > 1 && cost.train_seconds() > budget_seconds) {
    cost.lower_bound = true;
    return cost;
  }
  // Then on the run's threads; at a batch, the faster of the two trains the head.
  const auto on_both = [&](std::int64_t batch) {
    const auto many = threads > 1 ? typical(step(batch), 2) : single;
    if (batch > 1) {
      const ScopedThreads one(1);
      single = typical(step(batch), 2);
    }
    cost.threads = single < many ? 1 : 0;
    return std::min(single, many);
  };
  cost.step_seconds = on_both(1);
  if (work.batch_size <= 1) return cost;
  if (cost.train_seconds() > budget_seconds) {
    cost.lower_bound = true;
    return cost;
  }
  cost.step_seconds = on_both(work.batch_size);
  return cost;
}

double estimate_backbone_pass(model::Classifier& model, const std::vector<std::string>& layers,
                              std::int64_t images, c10::Device device) {
  TLKIT_CHECK(!layers.empty(), "no layer to time the backbone up to");
  const DeviceWhileTimed on_device(model, device);
  auto shape = model.input_shape(model.layers().front().name);
  shape[0] = std::clamp<std::int64_t>(images, 1, 4);
  const auto input = probe(shape, at::kFloat, model.device());
  ModeWhileTimed mode(model, false);
  at::NoGradGuard no_grad;
  const auto seconds = typical(
      [&] {
        const auto start = Clock::now();
        wait_for(model.forward_until(input, layers));
        return seconds_since(start);
      },
      1);
  return seconds / static_cast<double>(shape[0]) * static_cast<double>(images);
}

}  // namespace tlkit::pipeline
