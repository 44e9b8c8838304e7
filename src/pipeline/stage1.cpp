// Stage 1 of finetune: the head on cached features, k-fold estimates, the choice of head depth.
#include "stage1.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>

#include <ATen/ATen.h>
#include <torch/optim/lbfgs.h>
#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/random.h>
#include <tlkit/data/subset.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/pipeline/fit.h>
#include <tlkit/train/distributed.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {
namespace {

// The model file's hash as the run computed it once (start_run), else hashed here.
std::string model_hash(model::Classifier& model, const RunConfig& config) {
  return config.model_sha256.empty() ? model_sha256(model) : config.model_sha256;
}

// What the features of one split are computed from.
struct FeatureRequest {
  std::shared_ptr<const data::Dataset> dataset;
  std::string split;
  std::string layer;
  std::string model_sha256;
};

// out/features/<split> for the classification head's input, out/features/<layer>/<split> for
// any other layer.
fs::path feature_dir(const model::Classifier& model, const RunConfig& config,
                     const FeatureRequest& request) {
  const auto root = config.out / "features";
  return request.layer == model.penultimate_layer() ? root / request.split
                                                    : root / request.layer / request.split;
}

// The features of one split, reused only when the manifest's key (model, layer, preprocessing,
// ordered file list) equals this request's; extracted otherwise, with the reason logged.
FeatureSet cached_features(model::Classifier& model, const FeatureRequest& request,
                           const RunConfig& config) {
  const auto dir = feature_dir(model, config, request);
  const auto key = feature_key(request.model_sha256, request.layer, *eval_transform(model),
                               *request.dataset, config.fit.precision);
  auto* world = train::world();
  // Data parallel: rank 0 reads the cache and decides; the others follow its decision.
  std::optional<FeatureSet> reusable;
  if (train::is_main_process() && fs::exists(dir / "manifest.json")) {
    try {
      auto cached = load_features(dir);
      const auto reason = stale_reason(cached, key);
      if (reason.empty()) {
        logger()->info("stage 1: reusing cached {} features of {} ({} x {})", request.split,
                       request.layer, cached.features.size(0), cached.features.size(1));
        reusable = std::move(cached);
      } else {
        logger()->info("stage 1: cached {} features were {}; extracting again", request.split,
                       reason);
      }
    } catch (const Error& e) {
      logger()->info("stage 1: cached {} features not reusable ({}); extracting again",
                     request.split, e.what());
    }
  }
  if (world && train::broadcast_string(*world, reusable ? "reuse" : "extract") == "reuse")
    return reusable ? std::move(*reusable) : load_features(dir);
  if (reusable) return std::move(*reusable);
  ExtractOptions extract;
  extract.batch_size = static_cast<size_t>(std::max<std::int64_t>(config.data.batch_size, 64));
  extract.strict = config.data.strict;
  extract.workers = config.data.workers;
  extract.device = config.fit.device;
  extract.source = config.data.source;
  extract.split = request.split;
  extract.layer = request.layer;
  extract.model_sha256 = request.model_sha256;
  extract.precision = config.fit.precision;
  extract.channels_last = config.fit.channels_last;
  if (world) return extract_features_sharded(model, request.dataset, dir, extract);
  const auto extracted = extract_features(model, request.dataset, dir, extract);
  logger()->info("stage 1: extracted {} features of {} ({} x {}) in {:.1f}s", request.split,
                 request.layer, extracted.rows, extracted.dim, extracted.seconds);
  return load_features(dir, request.model_sha256);
}

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
      {model::ParamGroupSpec{"head", base_lr(fit.optimizer), {}, network.trainable_parameters()}});
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
  FeatureSet apply(const FeatureSet& set) const {
    if (!active()) return set;
    FeatureSet out = set;
    out.features = (set.features - mean) / scale;
    return out;
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

// The exact fit of a head that is one fully connected layer: multinomial logistic regression,
// mean cross-entropy + l2 * ||W||^2 (the bias is not penalised), by L-BFGS with a strong-Wolfe
// line search, from zeros, to convergence. float64 unless the features are large.
struct LogisticFit {
  at::Tensor weight, bias;  // [C, D], [C], in the inputs' space
};

LogisticFit fit_logistic(const at::Tensor& x, const at::Tensor& y, std::int64_t num_classes,
                         double l2) {
  auto weight = at::zeros({num_classes, x.size(1)}, x.options()).requires_grad_();
  auto bias = at::zeros({num_classes}, x.options()).requires_grad_();
  torch::optim::LBFGS lbfgs(std::vector<at::Tensor>{weight, bias},
                            torch::optim::LBFGSOptions(1)
                                .max_iter(500)
                                .tolerance_grad(1e-9)
                                .tolerance_change(1e-12)
                                .line_search_fn("strong_wolfe"));
  lbfgs.step([&] {
    lbfgs.zero_grad();
    auto loss =
        at::cross_entropy_loss(at::addmm(bias, x, weight.t()), y) + l2 * weight.pow(2).sum();
    loss.backward();
    return loss;
  });
  return {weight.detach(), bias.detach()};
}

// Loss and accuracy of (weight, bias) on (x, y), summed (not averaged) for pooling over folds.
std::pair<double, double> logistic_sums(const LogisticFit& fit, const at::Tensor& x,
                                        const at::Tensor& y) {
  at::NoGradGuard no_grad;
  const auto logits = at::addmm(fit.bias, x, fit.weight.t());
  const auto loss = at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>();
  const auto correct = logits.argmax(1).eq(y).sum().item<double>();
  return {loss, correct};
}

struct ExactHead {
  LogisticFit fit;  // trained on every training image, in the standardised space
  double l2 = 0;
  train::Evaluation estimate;              // of the chosen l2: pooled over the folds, or val
  std::vector<train::Evaluation> by_fold;  // of the chosen l2 (cross-validation only)
};

// The L2 strength when nothing can choose it (a single image in some class and no val split).
constexpr double kDefaultL2 = 1e-3;

// The scores of a fit on (x, y) as an evaluation.
train::Evaluation logistic_evaluation(const LogisticFit& fit, const at::Tensor& x,
                                      const at::Tensor& y) {
  const auto [loss, correct] = logistic_sums(fit, x, y);
  train::Evaluation e;
  e.examples = y.size(0);
  e.loss = loss / static_cast<double>(std::max<std::int64_t>(1, e.examples));
  e.accuracy = correct / static_cast<double>(std::max<std::int64_t>(1, e.examples));
  return e;
}

// The L2 strength from 1e-5 .. 10 (a decade apart) with the best estimate by the run's monitor:
// k-fold CV on the training features when `folds` >= 2, else the val split (when `val` has
// features), else kDefaultL2; then the fit on every training image at that strength. Writes
// metrics.csv (one row per strength) into `log_dir`.
ExactHead exact_head(const FeatureSet& train, const FeatureSet& val, std::int64_t folds,
                     const RunConfig& config, std::int64_t num_classes, const fs::path& log_dir) {
  // float64 as the reference probe, unless the features would not fit twice in 2 GiB.
  const bool has_val = val.features.defined() && val.features.size(0) > 0;
  const auto val_rows = has_val ? val.features.numel() : 0;
  const bool wide = static_cast<double>(train.features.numel() + val_rows) * 8 > 2e9;
  const auto dtype = wide ? at::kFloat : at::kDouble;
  const auto tx = train.features.to(dtype);
  const auto& ty = train.labels;
  ExactHead best;
  if (folds < 2 && !has_val) {
    best.l2 = kDefaultL2;
    best.fit = fit_logistic(tx, ty, num_classes, best.l2);
    logger()->info("stage 1: nothing to choose the L2 strength on; {:g} (the default)", best.l2);
    return best;
  }
  at::Tensor fold_of;
  if (folds >= 2) fold_of = fold_assignment(ty, folds, config.data.seed);
  bool have_best = false;
  std::string csv = "l2,train_loss,estimate_loss,estimate_acc\n";
  for (int k = -5; k <= 1; ++k) {
    const double l2 = std::pow(10.0, k);
    std::vector<train::Evaluation> by_fold;
    train::Evaluation e;
    LogisticFit fit;
    if (folds >= 2) {
      for (std::int64_t f = 0; f < folds; ++f) {
        const auto held = fold_of.eq(f).nonzero().squeeze(1);
        const auto kept = fold_of.ne(f).nonzero().squeeze(1);
        const auto fold_fit = fit_logistic(tx.index_select(0, kept), ty.index_select(0, kept),
                                           num_classes, l2);
        by_fold.push_back(
            logistic_evaluation(fold_fit, tx.index_select(0, held), ty.index_select(0, held)));
      }
      e = pooled_estimate(by_fold);
    } else {
      fit = fit_logistic(tx, ty, num_classes, l2);
      e = logistic_evaluation(fit, val.features.to(dtype), val.labels);
    }
    const auto train_loss =
        fit.weight.defined() ? logistic_evaluation(fit, tx, ty).loss : std::nan("");
    char row[160];
    std::snprintf(row, sizeof(row), "%g,%.9g,%.9g,%.9g\n", l2, train_loss, e.loss, e.accuracy);
    csv += row;
    logger()->debug("stage 1: logistic head, l2 {:g}: estimate loss {:.4f}, accuracy {:.2f}%", l2,
                    e.loss, 100 * e.accuracy);
    if (!have_best || train::better(e, best.estimate, config.fit.monitor)) {
      best.fit = std::move(fit);
      best.l2 = l2;
      best.estimate = e;
      best.by_fold = std::move(by_fold);
      have_best = true;
    }
  }
  // Cross-validated: the chosen strength fitted once more on every image.
  if (!best.fit.weight.defined()) best.fit = fit_logistic(tx, ty, num_classes, best.l2);
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
  ResultRow row{"feature extraction (stage 1 head), from " + head, 0, 0, 0};
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
                           double fixed_l2) {
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  const auto feature_layer = model.feature_layer_for(head);
  reinitialize_head(model, head, config);
  model.freeze_all();
  model.train(false);
  const auto sha = model_hash(model, config);
  const auto features = [&](const std::shared_ptr<const data::Dataset>& dataset,
                            const std::string& split) {
    return cached_features(model, {dataset, split, feature_layer, sha}, config);
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
  // statistics are folded into it afterwards and every score below is on the raw features.
  // Folding the mean needs the layer's bias: a head without one trains on the raw features (and
  // by gradient, as the exact fit has a bias too).
  const auto z = has_bias(network, head) ? standardizer_for(model, head, train_features.features)
                                         : Standardizer{};
  const auto train_z = z.apply(train_features);
  const auto val_z = has_val ? z.apply(val_features) : FeatureSet{};
  if (z.active() && !quiet)
    logger()->info("stage 1: the head trains on standardised features (folded into {})", head);

  HeadResult result;
  result.head = head;
  // Cross-validation over every labelled image when the run decides that way (small data), and
  // only where an estimate is wanted: a fold's refit (rows) or a given head is not compared.
  const auto folds = (estimate && !rows) ? data.cv_folds : 0;
  const auto cv_name = std::to_string(folds) + "-fold cross-validation on " +
                       std::to_string(train_features.labels.size(0)) + " images";
  const bool exact = config.head.solver == "auto" && z.active() && head == model.find_head();
  if (exact) {
    // One fully connected layer: a convex problem, solved exactly (see HeadOptions::solver).
    const auto l2_folds = rows ? 0 : data.cv_folds;  // the L2 strength is chosen without --head-from auto too
    ExactHead solved;
    if (rows && fixed_l2 > 0) {
      solved.l2 = fixed_l2;
      solved.fit = fit_logistic(train_z.features.to(at::kDouble), train_z.labels, num_classes,
                                solved.l2);
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
                     l2_folds >= 2 ? " chosen by " + config.fit.monitor + " on " + cv_name
                     : has_val     ? " chosen by " + config.fit.monitor + " on the val split"
                                   : std::string(" (the default)"));
    if (l2_folds >= 2) {
      result.estimate = solved.estimate;
      result.by_fold = solved.by_fold;
      result.estimate_name = cv_name;
    }
  } else {
    if (folds >= 2) {
      result.by_fold = cross_validate(network, train::clone_state(network), train_z, folds, config,
                                      num_classes);
      result.estimate = pooled_estimate(result.by_fold);
      result.estimate_name = cv_name;
    }
    std::optional<train::TensorBatchSource> val_z_source;
    if (has_val) val_z_source.emplace(val_z.features, val_z.labels, 1024, false);
    auto fit = head_fit_options(config);
    if (!has_val) fit.patience = 0;  // the budget runs to the end
    const auto best = fit_head(network, train_z.features, train_z.labels,
                               val_z_source ? &*val_z_source : nullptr, fit, config, num_classes,
                               quiet ? fs::path() : log_dir);
    train::copy_state(network, best);
  }
  fold_standardizer(network, head, z);
  if (has_val) {
    train::TensorBatchSource val_source(val_features.features, val_features.labels, 1024, false);
    result.validation = train::evaluate(network, val_source, num_classes, config.fit.device);
    if (result.estimate_name.empty()) {
      result.estimate = result.validation;
      result.estimate_name =
          "the val split (" + std::to_string(val_features.labels.size(0)) + " images)";
    }
  }
  if (!estimate && !rows) result.row = head_row(model, head, data, config);
  return result;
}

}  // namespace

HeadResult train_head(model::Classifier& model, const std::string& head, const PreparedData& data,
                      const RunConfig& config, bool estimate, const fs::path& log_dir) {
  return fit_head_layers(model, head, data, config, estimate, log_dir, nullptr, 0);
}

void refit_head(model::Classifier& model, const HeadResult& chosen, const PreparedData& data,
                const RunConfig& config, const std::vector<std::int64_t>& rows) {
  fit_head_layers(model, chosen.head, data, config, false, {}, &rows, chosen.l2);
}

std::vector<std::string> head_candidates(const model::Classifier& model, size_t images) {
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
  if (pools.size() < 2) return candidates;
  for (size_t i = pools[pools.size() - 2] + 1; i < first_linear->index; ++i) {
    if (!layers[i].has_params()) continue;
    // The block's input features must fit in memory for every image (1 GiB of float32).
    const auto shape = model.input_shape(layers[i].name);
    const double bytes = 4.0 * static_cast<double>(images) *
                         std::accumulate(shape.begin(), shape.end(), 1.0, std::multiplies<>());
    if (bytes <= 1024.0 * 1024 * 1024) {
      candidates.push_back(layers[i].name);
    } else {
      logger()->info("head-from auto: skipping {} ({:.1f} GiB of features)", layers[i].name,
                     bytes / (1024.0 * 1024 * 1024));
    }
    break;
  }
  return candidates;
}

HeadResult stage1(model::Classifier& model, const PreparedData& data, const RunConfig& config) {
  const auto dir = config.out / "stage1";
  if (config.head.from != "auto") {
    const auto head = config.head.from.empty() ? model.find_head() : config.head.from;
    return train_head(model, head, data, config, false, dir);
  }
  const bool can_compare = data.cv_folds >= 2 || data.val;
  auto candidates =
      head_candidates(model, data.train->size() + (data.val ? data.val->size() : 0));
  if (!can_compare && candidates.size() > 1) {
    logger()->info(
        "head-from auto: nothing to compare head depths on (no val split, no cross-validation); "
        "the head is the classification layer");
    candidates.resize(1);
  }
  if (candidates.size() == 1) {
    auto result = train_head(model, candidates.front(), data, config, true, dir);
    result.row = head_row(model, result.head, data, config);
    return result;
  }
  train::ScriptNetwork whole(model.module());
  const auto pretrained = train::clone_state(whole);
  HeadResult best;
  train::NamedTensors best_state;
  for (const auto& head : candidates) {
    train::copy_state(whole, pretrained);
    auto result = train_head(model, head, data, config, true, dir / "candidates" / head);
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
