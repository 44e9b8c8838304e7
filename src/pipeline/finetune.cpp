// The two-stage transfer pipeline (finetune) and full training (train); see transfer.h.
#include <tlkit/pipeline/transfer.h>

#include <cmath>

#include <torch/csrc/jit/api/module.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/schedule/spec.h>

#include "stage.h"

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

using detail::PreparedData;

// Features of one split, cached in out/features/<split>: reused when the manifest says they came
// from the same model file, extracted (once) otherwise.
FeatureSet cached_features(model::Classifier& model, const std::shared_ptr<const data::Dataset>& dataset,
                           const std::string& split, const FinetuneOptions& options, const std::string& sha,
                           const std::string& layer) {
  const auto dir = options.out / "features" / split;
  if (fs::exists(dir / "manifest.json")) {
    try {
      auto cached = load_features(dir, sha);
      if (cached.layer != layer) {
        logger()->info("stage 1: cached {} features are of layer {}, not {}; extracting again", split, cached.layer,
                       layer);
      } else if (cached.features.size(0) == static_cast<std::int64_t>(dataset->size())) {
        logger()->info("stage 1: reusing cached {} features ({} x {})", split, cached.features.size(0),
                       cached.features.size(1));
        return cached;
      }
    } catch (const Error& e) {
      logger()->info("stage 1: cached {} features not reusable ({}); extracting again", split, e.what());
    }
  }
  ExtractOptions extract;
  extract.batch_size = static_cast<size_t>(std::max<std::int64_t>(options.data.batch_size, 64));
  extract.workers = options.data.workers;
  extract.device = options.fine.device;
  extract.source = options.data.source;
  extract.split = split;
  extract.layer = layer;
  extract.model_sha256 = sha;
  const auto extracted = extract_features(model, dataset, dir, extract);
  logger()->info("stage 1: extracted {} features ({} x {}) in {:.1f}s", split, extracted.rows, extracted.dim,
                 extracted.seconds);
  return load_features(dir, sha);
}

// The default first unfrozen layer: the top third of the parametrised layers (for VGG16 the last
// conv block and the classifier), so lower, more generic layers stay frozen.
std::string default_unfreeze_from(const model::Classifier& model) {
  std::vector<std::string> parametrised;
  for (const auto& layer : model.layers())
    if (layer.has_params()) parametrised.push_back(layer.name);
  TLKIT_CHECK(!parametrised.empty(), "the model has no parametrised layers");
  const size_t top = (parametrised.size() + 2) / 3;
  return parametrised[parametrised.size() - top];
}

// Stage 1: trains a new head (the layers from `head` on) on cached features of the layer below it;
// returns its evaluation row and leaves the head's best weights on validation in the model.
ResultRow train_head(model::Classifier& model, const std::string& head, const PreparedData& data,
                     const FinetuneOptions& options) {
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  const auto feature_layer = model.feature_layer_for(head);
  if (!options.head_from.empty()) model.reinitialize(head);
  model.freeze_all();
  model.train(false);
  const auto sha = model_sha256(model);
  const auto features = [&](const std::shared_ptr<const data::Dataset>& dataset, const std::string& split) {
    return cached_features(model, dataset, split, options, sha, feature_layer);
  };
  const auto train_features = features(data.train, "train");
  const auto val_features = features(data.val, "val");
  const auto eval_features = data.eval == data.val ? val_features : features(data.eval, data.eval_split);
  logger()->info("stage 1: head = the layers from {} on, trained on the output of {}", head, feature_layer);

  model.unfreeze_from(head);
  train::ScriptLayersNetwork network(model.layers_from(head),
                                     [&model, head](const at::Tensor& x) { return model.forward_from(x, head); });
  const auto device = options.fine.device;
  train::TensorBatchSource train_source(train_features.features, train_features.labels, options.head_batch_size, true,
                                        options.data.seed);
  train::TensorBatchSource val_source(val_features.features, val_features.labels, 1024, false);
  train::TensorBatchSource eval_source(eval_features.features, eval_features.labels, 1024, false);

  FitOptions fit = options.fine;
  fit.epochs = options.head_epochs;
  fit.snapshots = false;
  fit.ema_decay = 0;
  fit.patience = std::max<std::int64_t>(10, options.fine.patience);
  fit.schedule_per_batch = false;
  auto optimizer = detail::make_optimizer(options.head_optimizer, {torch::optim::OptimizerParamGroup(network.trainable_parameters())});
  detail::StageSetup setup;
  setup.dir = options.out / "stage1";
  setup.label = "stage 1 (head on features)";
  setup.num_classes = num_classes;
  setup.checkpoints = false;
  const auto outcome = detail::run_stage(network, *optimizer, options.head_schedule, fit, train_source, &val_source, setup);
  train::copy_state(network, outcome.best.empty() ? outcome.last : outcome.best);
  const auto evaluation = train::evaluate(network, eval_source, num_classes, device);
  return {"feature extraction (stage 1 head)", evaluation.accuracy, evaluation.loss, evaluation.examples};
}

std::string resolve_schedule(const std::string& schedule, std::int64_t epochs) {
  if (schedule != "auto") return schedule;
  // Three cosine cycles with warm restarts: three snapshots for the ensemble.
  return "restarts:T_0=" + std::to_string(std::max<std::int64_t>(1, epochs / 3));
}

std::vector<std::pair<std::string, std::string>> describe(const DataOptions& data, const FitOptions& fit) {
  return {{"data", data.source},
          {"batch_size", std::to_string(data.batch_size)},
          {"seed", std::to_string(data.seed)},
          {"epochs", std::to_string(fit.epochs)},
          {"optimizer", fit.optimizer},
          {"schedule", fit.schedule},
          {"ema_decay", std::to_string(fit.ema_decay)},
          {"patience", std::to_string(fit.patience)}};
}

// The shared end of `finetune` (stage 2) and `train`: the training loop with every callback, then
// last / best / EMA / ensemble on the evaluation split, export of the best single model, report.
void fit_evaluate_export(model::Classifier& model, torch::optim::Optimizer& optimizer, const PreparedData& data,
                         const DataOptions& data_options, FitOptions fit, detail::StageSetup setup,
                         const std::string& row_prefix, const std::string& command,
                         const std::vector<std::pair<std::string, std::string>>& extra_settings, RunResult& result) {
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  train::ScriptNetwork network(model.module());
  auto loader_options = data_options;
  if (fit.overfit_batches > 0) {
    // The sanity check trains without regularisation: the same images every epoch, no dropout.
    loader_options.augment = false;
    network.set_dropout(false);
  }
  const auto sources = detail::make_sources(data, model, loader_options);
  setup.num_classes = num_classes;
  fit.schedule = resolve_schedule(fit.schedule, fit.epochs);
  const auto outcome = detail::run_stage(network, optimizer, fit.schedule, fit, *sources.train, sources.val.get(), setup);
  network.set_dropout(true);
  result.split = data.eval_split;
  for (auto& row : detail::evaluate_outcome(network, outcome, *sources.eval, num_classes, row_prefix, fit.device))
    result.rows.push_back(row);
  result.exported = setup.dir / "model.pt";
  model.set_weights_origin("tlkit " + command + " on " + data_options.source + " (from " + model.metadata().weights + ")");
  result.exported_from =
      detail::export_best(model, network, outcome, sources.val.get(), num_classes, result.exported, fit.device);
  auto settings = describe(data_options, fit);
  settings.insert(settings.end(), extra_settings.begin(), extra_settings.end());
  detail::write_report(setup.dir, result, outcome.fit.history, command, settings);
}

// Catches a bad optimizer or schedule spec, or a --resume without a checkpoint, before any work
// (stage 1 can take long): both specs are tried on a stand-in parameter.
void check_before_work(const FitOptions& fit, const std::string& schedule, bool resume, const fs::path& out) {
  TLKIT_CHECK(fit.epochs > 0, "--epochs must be positive, got ", fit.epochs);
  auto stand_in = torch::zeros({1}).requires_grad_();
  auto optimizer = detail::make_optimizer(fit.optimizer, {torch::optim::OptimizerParamGroup({stand_in})});
  schedule::ScheduleContext context;
  context.total_steps = fit.epochs;
  schedule::make_scheduler(resolve_schedule(schedule, fit.epochs), *optimizer, context);
  if (resume) {
    const auto last = out / "checkpoints" / "last.pt";
    TLKIT_CHECK(fs::exists(last), "cannot resume: '", last.string(), "' does not exist; run without --resume");
  }
}

}  // namespace

RunResult finetune(const FinetuneOptions& options) {
  check_before_work(options.fine, options.fine.schedule, options.resume, options.out);
  TLKIT_CHECK(options.head_epochs > 0, "--head-epochs must be positive, got ", options.head_epochs);
  {
    FitOptions head = options.fine;
    head.optimizer = options.head_optimizer;
    head.epochs = options.head_epochs;
    check_before_work(head, options.head_schedule, false, options.out);
  }
  fs::create_directories(options.out);
  const auto data = detail::open_data(options.data);
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  auto model = model::Classifier::load(options.model, {options.fine.device});
  if (model.metadata().random_init())
    logger()->warn("'{}' has random weights ({}): transfer needs a pretrained backbone", options.model.string(),
                   model.metadata().weights);
  model.replace_head(num_classes, data.classes);

  RunResult result;
  result.split = data.eval_split;
  // The new head: the classification layer (fresh from replace_head), or the layers from --head-from.
  const auto head = options.head_from.empty() ? model.find_head() : options.head_from;
  result.rows.push_back(train_head(model, head, data, options));
  logger()->info("stage 1: {:.2f}% on {}", 100 * result.rows.back().accuracy, data.eval_split);

  // Stage 2: upper layers unfrozen, per-layer learning rates, from the stage-1 head.
  const double lr = detail::spec_lr(options.fine.optimizer, 0.01);
  model.freeze_all();
  std::vector<model::ParamGroupSpec> groups;
  if (!options.lr_rules.empty()) {
    groups = model::param_groups_from_rules(model, model::parse_lr_rules(options.lr_rules), lr);
  } else {
    auto first = options.unfreeze_from.empty() ? default_unfreeze_from(model) : options.unfreeze_from;
    if (options.unfreeze_from.empty() && model.layer_index(head) < model.layer_index(first))
      first = head;  // the whole new head keeps training
    model.unfreeze_from(first);
    groups = model::param_groups_by_depth(model, lr, options.lr_decay, head);
  }
  for (const auto& group : groups) logger()->info("stage 2: group {} lr {:.3g} ({} tensors)", group.name, group.lr, group.params.size());
  auto optimizer = detail::make_optimizer(options.fine.optimizer,
                                          model::to_optimizer_groups(groups, torch::optim::SGDOptions(lr)));
  detail::StageSetup setup;
  setup.dir = options.out;
  setup.label = "stage 2 (fine-tune)";
  setup.resume = options.resume;
  setup.initial_loss_check = false;  // the head is trained already: the loss starts below ln(C)
  fit_evaluate_export(model, *optimizer, data, options.data, options.fine, setup, "fine-tuning: ", "finetune",
                      {{"model", options.model.string()},
                       {"head_from", head},
                       {"head_epochs", std::to_string(options.head_epochs)},
                       {"head_optimizer", options.head_optimizer},
                       {"lr_decay", std::to_string(options.lr_decay)}},
                      result);
  return result;
}

RunResult train(const TrainOptions& options) {
  check_before_work(options.fit, options.fit.schedule, options.resume, options.out);
  fs::create_directories(options.out);
  const auto data = detail::open_data(options.data);
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  auto model = model::Classifier::load(options.model, {options.fit.device});
  if (options.reinitialize) model.reinitialize();
  if (model.num_classes() != num_classes || model.class_names() != data.classes) model.replace_head(num_classes, data.classes);
  model.unfreeze_all();
  const double lr = detail::spec_lr(options.fit.optimizer, 0.01);
  auto optimizer = detail::make_optimizer(
      options.fit.optimizer, model::to_optimizer_groups(model::single_param_group(model, lr), torch::optim::SGDOptions(lr)));
  detail::StageSetup setup;
  setup.dir = options.out;
  setup.label = "train";
  setup.resume = options.resume;
  setup.initial_loss_check = options.reinitialize || model.metadata().random_init();
  RunResult result;
  fit_evaluate_export(model, *optimizer, data, options.data, options.fit, setup, "train: ", "train",
                      {{"model", options.model.string()}}, result);
  return result;
}

}  // namespace tlkit::pipeline
