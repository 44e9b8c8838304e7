// Stage 1 of finetune: the head on cached features, k-fold estimates, the choice of head depth.
#include "stage1.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>
#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/core/strings.h>
#include <tlkit/core/threads.h>
#include <tlkit/data/random.h>
#include <tlkit/data/subset.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/pipeline/fit.h>
#include <tlkit/pipeline/head_plan.h>
#include <tlkit/pipeline/logistic.h>
#include <tlkit/train/distributed.h>

#include "head_features.h"

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {
namespace {

// What the plan settled for the heads it kept (--head-from auto): the feature folders its pass
// extracted, and the heads whose steps were faster on one thread.
struct Planned {
  ExtractedHere extracted;
  std::set<std::string> one_thread;
};

// Stage 1 trains on cheap cached features: its own length, optimizer, schedule, batch size and
// patience (resolved from the data size); no EMA or snapshots; the run's monitor.
FitOptions head_fit_options(const RunConfig& config) {
  FitOptions fit;
  fit.epochs = config.head.epochs;
  fit.optimizer = config.head.optimizer;
  fit.schedule = config.head.schedule;
  fit.monitor = config.fit.monitor;
  fit.patience = config.head.patience;
  fit.min_delta = config.fit.min_delta;
  fit.ema_decay = 0;
  fit.snapshots = false;
  fit.on_nonfinite = config.fit.on_nonfinite;
  fit.decay_all = config.fit.decay_all;
  fit.device = config.fit.device;
  fit.progress = config.fit.progress;
  return fit;
}

// One training run of the head's layers on (inputs, labels), with early stopping on `val` when
// given; writes metrics.csv and events into `log_dir` unless it is empty.
train::NamedTensors fit_head(train::Network& network, const at::Tensor& inputs,
                             const at::Tensor& labels, train::BatchSource* val, FitOptions fit,
                             const RunConfig& config, std::int64_t num_classes,
                             const fs::path& log_dir) {
  const bool log = !log_dir.empty();
  train::TensorBatchSource source(inputs, labels, config.head.batch_size, true, config.data.seed);
  auto optimizer = build_optimizer(
      fit.optimizer,
      {model::ParamGroupSpec{"head", base_lr(fit.optimizer), {}, network.trainable_parameters()}},
      fit.decay_all);
  StageSetup setup;
  setup.dir = log_dir;
  setup.label = "stage 1 (head on features)";
  setup.lr_option = "--head-optimizer";
  setup.schedule = fit.schedule;
  setup.num_classes = num_classes;
  setup.checkpoints = false;
  setup.log = log;
  setup.initial_loss_check = log;  // once per stage, not once per cross-validation fold
  if (!log) fit.progress = false;
  const auto outcome = fit_stage(network, *optimizer, fit, source, val, setup);
  return outcome.best.empty() ? outcome.last : outcome.best;
}

// The fold of each row of `labels` (the shared stratified k-fold helper), as a tensor.
at::Tensor fold_assignment(const at::Tensor& labels, std::int64_t folds, std::uint64_t seed) {
  const auto contiguous = labels.contiguous();
  const std::vector<int64_t> values(contiguous.data_ptr<int64_t>(),
                                    contiguous.data_ptr<int64_t>() + contiguous.numel());
  return at::tensor(data::stratified_folds(values, folds, seed));
}

// Pools per-fold evaluations (weighted by their images) into one.
train::Evaluation pooled_estimate(const std::vector<train::Evaluation>& folds) {
  train::Evaluation pooled;
  double loss = 0, correct = 0;
  for (const auto& e : folds) {
    loss += e.loss * static_cast<double>(e.examples);
    correct += e.accuracy * static_cast<double>(e.examples);
    pooled.examples += e.examples;
    if (e.confusion.defined())  // per-class recall over every fold (balanced accuracy)
      pooled.confusion = pooled.confusion.defined() ? pooled.confusion + e.confusion : e.confusion;
  }
  pooled.loss = loss / static_cast<double>(std::max<std::int64_t>(1, pooled.examples));
  pooled.accuracy = correct / static_cast<double>(std::max<std::int64_t>(1, pooled.examples));
  return pooled;
}

// k-fold cross-validation of the head on the training features (every labelled image):
// stratified, seeded folds; each fold trains from `start` for the stage's step budget (no early
// stopping: the held fold is only scored). One evaluation per fold.
std::vector<train::Evaluation> cross_validate(train::Network& network,
                                              const train::NamedTensors& start,
                                              const FeatureSet& train, std::int64_t folds,
                                              const RunConfig& config, std::int64_t num_classes) {
  const auto& inputs = train.features;
  const auto& labels = train.labels;
  const auto fold_of = fold_assignment(labels, folds, config.data.seed);
  std::vector<train::Evaluation> scores;
  for (std::int64_t f = 0; f < folds; ++f) {
    const auto held = fold_of.eq(f).nonzero().squeeze(1);
    const auto kept = fold_of.ne(f).nonzero().squeeze(1);
    train::copy_state(network, start);
    auto fit = head_fit_options(config);
    const auto batches = (kept.size(0) + config.head.batch_size - 1) / config.head.batch_size;
    fit.epochs = std::max<std::int64_t>(1, (config.head.steps + batches - 1) / batches);
    fit.patience = 0;
    fit_head(network, inputs.index_select(0, kept), labels.index_select(0, kept), nullptr, fit,
             config, num_classes, {});
    train::TensorBatchSource scored(inputs.index_select(0, held), labels.index_select(0, held),
                                    1024, false);
    scores.push_back(train::evaluate(network, scored, num_classes, config.fit.device));
  }
  train::copy_state(network, start);
  return scores;
}

// Per-feature standardisation of a head whose first layer is fully connected, as a linear probe
// standardises its inputs: the head trains on (x - mean) / scale of the training features (Adam
// on features of very different scales converges slowly), and the statistics are then folded
// into that layer (W / scale, b - W (mean / scale)), so the head takes the raw features.
struct Standardizer {
  at::Tensor mean, scale;  // [D]; empty: the head trains on raw features
  bool active() const { return mean.defined(); }
  // In place, so a large cache is not held twice: the caller's rows become standardised.
  void apply_in_place(FeatureSet& set) const {
    if (active() && set.features.defined()) set.features.sub_(mean).div_(scale);
  }
};

Standardizer standardizer_for(const model::Classifier& model, const std::string& head,
                              const at::Tensor& train_features) {
  Standardizer z;
  const auto layers = model.layers();
  const auto first = std::find_if(layers.begin(), layers.end(),
                                  [&head](const model::Layer& l) { return l.name == head; });
  if (first == layers.end() || first->type != "Linear" || train_features.dim() != 2 ||
      train_features.size(0) < 2)
    return z;
  z.mean = train_features.mean(0);
  const auto std = train_features.std(0);
  // Constant features (a ReLU that never fired) keep scale 1: nothing to learn from them.
  z.scale = at::where(std > 1e-6, std, at::ones_like(std));
  return z;
}

bool has_bias(const train::Network& network, const std::string& head) {
  for (auto& [name, tensor] : network.named_state())
    if (name == head + ".bias" && tensor.defined()) return true;
  return false;
}

// Folds the standardisation into the first layer's weight and bias (in place).
void fold_standardizer(train::Network& network, const std::string& head, const Standardizer& z) {
  if (!z.active()) return;
  at::Tensor weight, bias;
  for (auto& [name, tensor] : network.named_state()) {
    if (name == head + ".weight") weight = tensor;
    if (name == head + ".bias") bias = tensor;
  }
  TLKIT_CHECK(weight.defined() && weight.dim() == 2 && weight.size(1) == z.scale.size(0),
              "stage 1: cannot fold the feature standardisation into ", head);
  at::NoGradGuard no_grad;
  TLKIT_CHECK(bias.defined(), "stage 1: ", head, " has no bias to fold the feature mean into");
  const auto folded = weight / z.scale.to(weight.dtype());
  bias.sub_(at::mv(folded, z.mean.to(weight.dtype())));
  weight.copy_(folded);
}

struct ExactHead {
  LogisticFit fit;  // trained on every training image, in the standardised space
  double l2 = 0;
  train::Evaluation estimate;              // of the chosen l2: pooled over the folds, or val
  std::vector<train::Evaluation> by_fold;  // of the chosen l2 (cross-validation only)
};

// The L2 strength when nothing can choose it (a single image in some class and no val split).
constexpr double kDefaultL2 = 1e-3;

// The strengths tried, 10 .. 1e-5 a decade apart, strongest first (the path's warm starts).
std::vector<double> l2_grid() {
  std::vector<double> grid;
  for (int k = 1; k >= -5; --k) grid.push_back(std::pow(10.0, k));
  return grid;
}

train::Evaluation as_evaluation(const std::vector<LogisticScore>& scores) {
  train::Evaluation e;
  double loss = 0, correct = 0;
  for (const auto& s : scores) {
    loss += s.loss_sum;
    correct += s.correct;
    e.examples += s.examples;
    if (s.confusion.defined())
      e.confusion = e.confusion.defined() ? e.confusion + s.confusion : s.confusion;
  }
  e.loss = loss / static_cast<double>(std::max<std::int64_t>(1, e.examples));
  e.accuracy = correct / static_cast<double>(std::max<std::int64_t>(1, e.examples));
  return e;
}

// The features as the exact head solves them: float64 as the reference probe, unless they would
// not fit twice in 2 GiB.
at::ScalarType exact_dtype(const FeatureSet& train, const FeatureSet& val) {
  const auto val_values = val.features.defined() ? val.features.numel() : 0;
  const bool wide = static_cast<double>(train.features.numel() + val_values) * 8 > 2e9;
  return wide ? at::kFloat : at::kDouble;
}

// The exact fit of a head that is one fully connected layer (logistic.h: multinomial logistic
// regression, L-BFGS, in the row space of the training features when there are fewer images than
// features). The L2 strength from 1e-5 .. 10 (a decade apart) with the best estimate by the run's
// monitor: k-fold CV on the training features when `folds` >= 2, else the val split (when `val`
// has features), else kDefaultL2; the strengths are fitted as one path, strongest first, each
// fold's fit starting from its fit at the previous strength; then the fit on every training image
// at the chosen strength (from the mean of its folds' fits). Writes metrics.csv (one row per
// strength) into `log_dir`.
ExactHead exact_head(const FeatureSet& train, const FeatureSet& val, std::int64_t folds,
                     const RunConfig& config, std::int64_t num_classes, const fs::path& log_dir) {
  const auto start_time = std::chrono::steady_clock::now();
  const bool has_val = val.features.defined() && val.features.size(0) > 0;
  const auto dtype = exact_dtype(train, val);
  const auto tx = train.features.to(dtype);
  const auto& ty = train.labels;
  // Every fold's optimum lies in the row space of all the training rows: one basis for all.
  const auto space = RowSpace::of(tx);
  const auto zx = space.project(tx);
  LogisticOptions options;
  ExactHead best;
  if (folds < 2 && !has_val) {
    best.l2 = options.l2 = kDefaultL2;
    best.fit = space.lift(fit_logistic(zx, ty, num_classes, options));
    logger()->info("stage 1: nothing to choose the L2 strength on; {:g} (the default)", best.l2);
    return best;
  }
  at::Tensor fold_of, held_x, held_y;
  if (folds >= 2) {
    fold_of = fold_assignment(ty, folds, config.data.seed);
  } else {
    held_x = space.project(val.features.to(dtype));
    held_y = val.labels;
  }
  const auto path =
      logistic_path(zx, ty, num_classes, l2_grid(), fold_of, folds, held_x, held_y, options);
  // Weakest first, as the table reads; a tie keeps the weaker strength.
  const LogisticPathStep* chosen = nullptr;
  std::int64_t iterations = 0, fits = 0;
  std::string csv = "l2,train_loss,estimate_loss,estimate_acc\n";
  for (auto step = path.rbegin(); step != path.rend(); ++step) {
    iterations += step->iterations;
    fits += static_cast<std::int64_t>(step->fits.size());
    const auto e = as_evaluation(step->scores);
    const auto train_loss = folds >= 2 ? std::nan("")
                                       : logistic_score(step->fits.front(), zx, ty).loss_sum /
                                             static_cast<double>(ty.size(0));
    csv += fmt::format("{:g},{:.9g},{:.9g},{:.9g}\n", step->l2, train_loss, e.loss, e.accuracy);
    logger()->debug("stage 1: logistic head, l2 {:g}: estimate loss {:.4f}, accuracy {:.2f}%",
                    step->l2, e.loss, 100 * e.accuracy);
    if (!chosen || train::better(e, best.estimate, config.fit.monitor)) {
      chosen = &*step;
      best.l2 = step->l2;
      best.estimate = e;
    }
  }
  if (folds >= 2) {
    for (const auto& score : chosen->scores) best.by_fold.push_back(as_evaluation({score}));
    // Cross-validated: the chosen strength fitted once more on every image.
    options.l2 = best.l2;
    const auto start = average_fit(chosen->fits);
    auto fit = fit_logistic(zx, ty, num_classes, options, &start);
    iterations += fit.iterations;
    ++fits;
    best.fit = space.lift(fit);
  } else {
    best.fit = space.lift(chosen->fits.front());
  }
  logger()->info(
      "stage 1: logistic head: {} L2 strengths, {} fits, {} L-BFGS iterations in {:.2f}s ({} of "
      "{} features{})",
      path.size(), fits, iterations,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count(),
      space.dim(), tx.size(1), space.reduces() ? ": solved in the images' row space" : "");
  if (train::is_main_process()) {
    fs::create_directories(log_dir);
    write_file_atomic(log_dir / "metrics.csv", csv);
  }
  return best;
}
}  // namespace

// The stage-1 head's row of the results table, on the evaluation split: its features are
// extracted for the chosen head only (not for every candidate depth). Without an evaluation split
// the row measures nothing (0 images).
ResultRow head_row(model::Classifier& model, const std::string& head, const PreparedData& data,
                   const RunConfig& config) {
  ResultRow row;
  row.name = "feature extraction (stage 1 head), from " + head;
  if (!data.eval) return row;
  const auto layer = model.feature_layer_for(head);
  const bool on_val = data.eval == data.val;  // the val features are cached under "val"
  const auto eval_features = cached_features(
      model, {data.eval, on_val ? "val" : data.eval_split, layer, model_hash(model, config)},
      config);
  train::ScriptLayersNetwork network(model.layers_from(head), [&model, head](const at::Tensor& x) {
    return model.forward_from(x, head);
  });
  train::TensorBatchSource source(eval_features.features, eval_features.labels, 1024, false);
  const auto e = train::evaluate(network, source, static_cast<std::int64_t>(data.classes.size()),
                                 config.fit.device);
  row.accuracy = e.accuracy;
  row.loss = e.loss;
  row.examples = e.examples;
  row.evaluation = e;
  return row;
}

namespace {

// Re-initialises the head's layers (not the classification layer, fresh from replace_head),
// seeded by the run's seed and the layer's name: the head starts from the same weights whether it
// was chosen by --head-from auto or given, in the run and in each cross-validation fold.
void reinitialize_head(model::Classifier& model, const std::string& head, const RunConfig& config) {
  if (head == model.find_head()) return;
  std::uint64_t name_hash = 1469598103934665603ull;  // FNV-1a
  for (const unsigned char c : head) name_hash = (name_hash ^ c) * 1099511628211ull;
  torch::manual_seed(data::derive_seed(config.data.seed, name_hash));
  model.reinitialize(head);
}

FeatureSet rows_of(const FeatureSet& set, const std::vector<std::int64_t>& rows) {
  FeatureSet out = set;
  const auto index = at::tensor(rows);
  out.features = set.features.index_select(0, index);
  out.labels = set.labels.index_select(0, index);
  return out;
}

}  // namespace

namespace {

// train_head, or with `rows` a refit on those rows of the training features (a fold of
// cross-validation: quiet, no logs, the given L2 strength when `fixed_l2` > 0).
HeadResult fit_head_layers(model::Classifier& model, const std::string& head,
                           const PreparedData& data, const RunConfig& config, bool estimate,
                           const fs::path& log_dir, const std::vector<std::int64_t>* rows,
                           double fixed_l2, const Planned& planned) {
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  const auto feature_layer = model.feature_layer_for(head);
  reinitialize_head(model, head, config);
  model.freeze_all();
  model.train(false);
  const auto sha = model_hash(model, config);
  const auto features = [&](const std::shared_ptr<const data::Dataset>& dataset,
                            const std::string& split) {
    return cached_features(model, {dataset, split, feature_layer, sha}, config, planned.extracted);
  };
  auto train_features = features(data.train, "train");
  if (rows) train_features = rows_of(train_features, *rows);  // a cross-validation fold
  FeatureSet val_features;
  if (data.val && !rows) val_features = features(data.val, "val");
  const bool has_val = val_features.features.defined();
  const bool quiet = rows != nullptr;
  if (!quiet)
    logger()->info("stage 1: head = the layers from {} on, trained on the output of {}", head,
                   feature_layer);

  model.unfreeze_from(head);
  train::ScriptLayersNetwork network(model.layers_from(head), [&model, head](const at::Tensor& x) {
    return model.forward_from(x, head);
  });
  // Trained on standardised features when the head starts with a fully connected layer; the
  // statistics are folded into it afterwards (the val score is taken just before, on the same
  // standardised rows: the same numbers as the folded layer on the raw ones). Folding the mean
  // needs the layer's bias: a head without one trains on the raw features (and by gradient, as
  // the exact fit has a bias too).
  const auto z = has_bias(network, head) ? standardizer_for(model, head, train_features.features)
                                         : Standardizer{};
  z.apply_in_place(train_features);
  z.apply_in_place(val_features);
  const auto& train_z = train_features;
  const auto& val_z = val_features;
  if (z.active() && !quiet)
    logger()->info("stage 1: the head trains on standardised features (folded into {})", head);

  HeadResult result;
  result.head = head;
  // Cross-validation over every labelled image when the run decides that way (small data), and
  // only where an estimate is wanted: a fold's refit (rows) or a given head is not compared.
  const auto folds = (estimate && !rows) ? data.cv_folds : 0;
  const auto cv_name = [&](std::int64_t k) {
    return std::to_string(k) + "-fold cross-validation on " +
           std::to_string(train_features.labels.size(0)) + " images";
  };
  const bool exact = config.head.solver == "auto" && z.active() && head == model.find_head();
  if (exact) {
    // One fully connected layer: a convex problem, solved exactly (see HeadOptions::solver).
    const auto l2_folds =
        rows ? 0 : data.cv_folds;  // the L2 strength is chosen without --head-from auto too
    ExactHead solved;
    if (rows && fixed_l2 > 0) {
      solved.l2 = fixed_l2;
      LogisticOptions options;
      options.l2 = fixed_l2;
      solved.fit = fit_logistic_reduced(train_z.features.to(exact_dtype(train_z, val_z)),
                                        train_z.labels, num_classes, options);
    } else {
      solved = exact_head(train_z, val_z, l2_folds, config, num_classes, log_dir);
    }
    at::NoGradGuard no_grad;
    for (auto& [name, tensor] : network.named_state()) {
      if (name == head + ".weight") tensor.copy_(solved.fit.weight);
      if (name == head + ".bias") tensor.copy_(solved.fit.bias);
    }
    result.l2 = solved.l2;
    if (!quiet)
      logger()->info("stage 1: {} fitted exactly (logistic regression, L-BFGS), L2 {:g}{}", head,
                     solved.l2,
                     l2_folds >= 2 ? " chosen by " + config.fit.monitor + " on " + cv_name(l2_folds)
                     : has_val     ? " chosen by " + config.fit.monitor + " on the val split"
                                   : std::string(" (the default)"));
    if (l2_folds >= 2) {
      result.estimate = solved.estimate;
      result.by_fold = solved.by_fold;
      result.estimate_name = cv_name(l2_folds);
    }
  } else {
    const ScopedThreads threads(planned.one_thread.count(head) ? 1 : 0);
    if (folds >= 2) {
      result.by_fold =
          cross_validate(network, train::clone_state(network), train_z, folds, config, num_classes);
      result.estimate = pooled_estimate(result.by_fold);
      result.estimate_name = cv_name(folds);
    }
    std::optional<train::TensorBatchSource> val_z_source;
    if (has_val) val_z_source.emplace(val_z.features, val_z.labels, 1024, false);
    auto fit = head_fit_options(config);
    if (!has_val) fit.patience = 0;  // the budget runs to the end
    const auto best =
        fit_head(network, train_z.features, train_z.labels, val_z_source ? &*val_z_source : nullptr,
                 fit, config, num_classes, quiet ? fs::path() : log_dir);
    train::copy_state(network, best);
  }
  if (has_val) {
    train::TensorBatchSource val_source(val_z.features, val_z.labels, 1024, false);
    result.validation = train::evaluate(network, val_source, num_classes, config.fit.device);
    if (result.estimate_name.empty()) {
      result.estimate = result.validation;
      result.estimate_name = "the val split (" + std::to_string(val_z.labels.size(0)) + " images)";
    }
  }
  fold_standardizer(network, head, z);
  if (!estimate && !rows) result.row = head_row(model, head, data, config);
  return result;
}

}  // namespace

HeadResult train_head(model::Classifier& model, const std::string& head, const PreparedData& data,
                      const RunConfig& config, bool estimate, const fs::path& log_dir) {
  return fit_head_layers(model, head, data, config, estimate, log_dir, nullptr, 0, Planned{});
}

void refit_head(model::Classifier& model, const HeadResult& chosen, const PreparedData& data,
                const RunConfig& config, const std::vector<std::int64_t>& rows) {
  fit_head_layers(model, chosen.head, data, config, false, {}, &rows, chosen.l2, Planned{});
}

std::vector<std::string> head_candidates(const model::Classifier& model) {
  const auto layers = model.layers();
  const auto head = model.find_head();
  std::vector<std::string> candidates{head};
  const auto first_linear = std::find_if(layers.begin(), layers.end(),
                                         [](const model::Layer& l) { return l.type == "Linear"; });
  if (first_linear == layers.end()) return candidates;
  if (first_linear->name != head) candidates.push_back(first_linear->name);
  std::vector<size_t> pools;
  for (auto it = layers.begin(); it != first_linear; ++it)
    if (it->type.find("MaxPool") != std::string::npos) pools.push_back(it->index);
  if (pools.size() >= 2) {  // VGG: the last conv block (after the last-but-one max pool)
    for (size_t i = pools[pools.size() - 2] + 1; i < first_linear->index; ++i) {
      if (!layers[i].has_params()) continue;
      candidates.push_back(layers[i].name);
      break;
    }
    return candidates;
  }
  // Block networks (ResNet, MobileNetV3, EfficientNet): the last block before the global pool.
  for (size_t i = first_linear->index; i-- > 1;) {
    if (!layers[i].has_params() || layers[i].type.find("Norm") != std::string::npos) continue;
    candidates.push_back(layers[i].name);
    break;
  }
  return candidates;
}

namespace {

std::string about_seconds(double s) {
  return s < 10 ? fmt::format("{:.1f} s", s) : fmt::format("{:.0f} s", s);
}

// The candidates this run can afford (head_plan.h), logged with the expected time before any work,
// and their features of every split cached by one backbone pass per split.
HeadPlan plan_stage1(model::Classifier& model, const PreparedData& data, const RunConfig& config,
                     const std::vector<std::string>& candidates, Planned& planned) {
  const auto train_images = static_cast<std::int64_t>(data.train->size());
  const auto val_images = static_cast<std::int64_t>(data.val ? data.val->size() : 0);
  HeadWork work;
  work.images = train_images + val_images;
  work.train_images = train_images;
  work.folds = data.cv_folds >= 2 ? data.cv_folds : 0;
  work.classes = static_cast<std::int64_t>(data.classes.size());
  work.steps = config.head.steps;
  work.batch_size = config.head.batch_size;
  work.exact_solver = config.head.solver == "auto";
  work.l2_strengths = static_cast<std::int64_t>(l2_grid().size());
  work.device = config.fit.device;
  std::vector<std::string> layers;
  for (const auto& head : candidates) layers.push_back(model.feature_layer_for(head));
  const auto pass = estimate_backbone_pass(model, layers, work.images, config.fit.device);
  const auto budget = head_budget(pass, work.images);
  std::vector<HeadCost> costs;
  for (const auto& head : candidates)
    costs.push_back(measure_head(model, head, work, budget.train_seconds));
  auto plan = plan_heads(costs, budget);
  // Data parallel: every rank trains the heads rank 0 planned (their timings differ).
  if (auto* world = train::world()) {
    const auto kept = split_trimmed(train::broadcast_string(*world, join(plan.heads(), ",")), ',');
    std::vector<HeadCost> agreed;
    for (const auto& head : kept)
      agreed.push_back(*std::find_if(costs.begin(), costs.end(),
                                     [&head](const HeadCost& c) { return c.head == head; }));
    plan.kept = agreed;
  }

  const auto wanted = plan.feature_layers();
  const auto train_layers = layers_to_extract(model, data.train, "train", wanted, config);
  const auto val_layers = data.val ? layers_to_extract(model, data.val, "val", wanted, config)
                                   : std::vector<std::string>{};
  const auto to_pass =
      (train_layers.empty() ? 0 : train_images) + (val_layers.empty() ? 0 : val_images);
  const auto pass_seconds = pass * static_cast<double>(to_pass) /
                            static_cast<double>(std::max<std::int64_t>(1, work.images));
  const auto caching = to_pass == 0
                           ? std::string("every feature cached already")
                           : fmt::format("one backbone pass over {} images (~{}) caching {}",
                                         to_pass, about_seconds(pass_seconds), join(wanted));
  logger()->info("stage 1 plan: {}; head training budget {} ({}); expected ~{} ({})",
                 plan.describe(), about_seconds(budget.train_seconds), budget.why,
                 about_seconds(pass_seconds + plan.train_seconds()), caching);
  for (const auto& c : plan.kept)
    if (c.threads == 1) planned.one_thread.insert(c.head);
  extract_layers(model, data.train, "train", train_layers, config, planned.extracted);
  if (data.val) extract_layers(model, data.val, "val", val_layers, config, planned.extracted);
  return plan;
}

}  // namespace

HeadResult stage1(model::Classifier& model, const PreparedData& data, const RunConfig& config) {
  const auto dir = config.out / "stage1";
  if (config.head.from != "auto") {
    const auto head = config.head.from.empty() ? model.find_head() : config.head.from;
    return train_head(model, head, data, config, false, dir);
  }
  const bool can_compare = data.cv_folds >= 2 || data.val;
  auto candidates = head_candidates(model);
  if (!can_compare && candidates.size() > 1) {
    logger()->info(
        "head-from auto: nothing to compare head depths on (no val split, no cross-validation); "
        "the head is the classification layer");
    candidates.resize(1);
  }
  Planned planned;
  if (candidates.size() > 1) {
    candidates = plan_stage1(model, data, config, candidates, planned).heads();
    if (candidates.size() == 1)
      logger()->info("head-from auto: the head starts at {} (the only candidate within the budget)",
                     candidates.front());
  }
  if (candidates.size() == 1) {
    auto result =
        fit_head_layers(model, candidates.front(), data, config, true, dir, nullptr, 0, planned);
    result.row = head_row(model, result.head, data, config);
    return result;
  }
  train::ScriptNetwork whole(model.module());
  const auto pretrained = train::clone_state(whole);
  HeadResult best;
  train::NamedTensors best_state;
  for (const auto& head : candidates) {
    train::copy_state(whole, pretrained);
    auto result = fit_head_layers(model, head, data, config, true, dir / "candidates" / head,
                                  nullptr, 0, planned);
    logger()->info("head-from auto: {:<14} estimate loss {:.4f}, accuracy {:.2f}% ({})", head,
                   result.estimate.loss, 100 * result.estimate.accuracy, result.estimate_name);
    if (best.head.empty() || train::better(result.estimate, best.estimate, config.fit.monitor)) {
      best = std::move(result);
      best_state = train::clone_state(whole);
    }
  }
  logger()->info("head-from auto: the head starts at {} (best {} by {})", best.head,
                 config.fit.monitor, best.estimate_name);
  // The winner as trained (not trained again): its weights, and its logs from
  // stage1/candidates/<head>/ copied up to stage1/ (every candidate's stay there).
  train::copy_state(whole, best_state);
  best.row = head_row(model, best.head, data, config);
  if (train::is_main_process()) {
    std::error_code ignored;
    for (const auto& entry : fs::directory_iterator(dir / "candidates" / best.head, ignored))
      if (entry.is_regular_file(ignored)) {
        note_written(dir / entry.path().filename());
        fs::copy_file(entry.path(), dir / entry.path().filename(),
                      fs::copy_options::overwrite_existing, ignored);
      }
  }
  return best;
}

}  // namespace tlkit::pipeline::detail
