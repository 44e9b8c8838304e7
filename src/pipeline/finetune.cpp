// The two-stage transfer pipeline: stage 1 (a new head on cached features), stage 2 (fine-tuning).
#include <tlkit/pipeline/transfer.h>

#include <torch/csrc/jit/api/module.h>
#include <torch/optim/optimizer.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/pipeline/extract.h>

#include "run.h"

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

// What the features of one split are computed from.
struct FeatureRequest {
  std::shared_ptr<const data::Dataset> dataset;
  std::string split;
  std::string layer;
  std::string model_sha256;
};

// The features of one split, cached in out/features/<split>: reused only when the manifest's key
// (model, layer, preprocessing, ordered file list) equals this request's; extracted otherwise,
// with the reason logged.
FeatureSet cached_features(model::Classifier& model, const FeatureRequest& request,
                           const RunConfig& config) {
  const auto dir = config.out / "features" / request.split;
  const auto key =
      feature_key(request.model_sha256, request.layer, *eval_transform(model), *request.dataset);
  if (fs::exists(dir / "manifest.json")) {
    try {
      auto cached = load_features(dir);
      const auto reason = stale_reason(cached, key);
      if (reason.empty()) {
        logger()->info("stage 1: reusing cached {} features ({} x {})", request.split,
                       cached.features.size(0), cached.features.size(1));
        return cached;
      }
      logger()->info("stage 1: cached {} features were {}; extracting again", request.split,
                     reason);
    } catch (const Error& e) {
      logger()->info("stage 1: cached {} features not reusable ({}); extracting again",
                     request.split, e.what());
    }
  }
  ExtractOptions extract;
  extract.batch_size = static_cast<size_t>(std::max<std::int64_t>(config.data.batch_size, 64));
  extract.workers = config.data.workers;
  extract.device = config.fit.device;
  extract.source = config.data.source;
  extract.split = request.split;
  extract.layer = request.layer;
  extract.model_sha256 = request.model_sha256;
  const auto extracted = extract_features(model, request.dataset, dir, extract);
  logger()->info("stage 1: extracted {} features ({} x {}) in {:.1f}s", request.split,
                 extracted.rows, extracted.dim, extracted.seconds);
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

// Stage 1: trains a new head (the layers from `head` on) on cached features of the layer below it;
// returns its evaluation row and leaves the head's best weights on validation in the model.
ResultRow train_head(model::Classifier& model, const std::string& head, const PreparedData& data,
                     const RunConfig& config) {
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  const auto feature_layer = model.feature_layer_for(head);
  if (!config.head.from.empty()) model.reinitialize(head);
  model.freeze_all();
  model.train(false);
  const auto sha = model_sha256(model);
  const auto features = [&](const std::shared_ptr<const data::Dataset>& dataset,
                            const std::string& split) {
    return cached_features(model, {dataset, split, feature_layer, sha}, config);
  };
  const auto train_features = features(data.train, "train");
  const auto val_features = features(data.val, "val");
  const auto eval_features =
      data.eval == data.val ? val_features : features(data.eval, data.eval_split);
  logger()->info("stage 1: head = the layers from {} on, trained on the output of {}", head,
                 feature_layer);

  model.unfreeze_from(head);
  train::ScriptLayersNetwork network(model.layers_from(head), [&model, head](const at::Tensor& x) {
    return model.forward_from(x, head);
  });
  train::TensorBatchSource train_source(train_features.features, train_features.labels,
                                        config.head.batch_size, true, config.data.seed);
  train::TensorBatchSource val_source(val_features.features, val_features.labels, 1024, false);
  train::TensorBatchSource eval_source(eval_features.features, eval_features.labels, 1024, false);

  const auto fit = head_fit_options(config);
  auto optimizer = build_optimizer(
      fit.optimizer,
      {model::ParamGroupSpec{"head", base_lr(fit.optimizer), {}, network.trainable_parameters()}});
  StageSetup setup;
  setup.dir = config.out / "stage1";
  setup.label = "stage 1 (head on features)";
  setup.schedule = fit.schedule;
  setup.num_classes = num_classes;
  setup.checkpoints = false;
  const auto outcome = fit_stage(network, *optimizer, fit, train_source, &val_source, setup);
  train::copy_state(network, outcome.best.empty() ? outcome.last : outcome.best);
  const auto evaluation = train::evaluate(network, eval_source, num_classes, config.fit.device);
  return {"feature extraction (stage 1 head)", evaluation.accuracy, evaluation.loss,
          evaluation.examples};
}

// Stage 2's parameter groups: every layer from --unfreeze-from (default: all of them) with
// per-layer learning rates by depth decay below the head, or explicit rules.
std::vector<model::ParamGroupSpec> fine_tuning_groups(model::Classifier& model,
                                                      const std::string& head,
                                                      const RunConfig& config) {
  const double lr = base_lr(config.fit.optimizer);
  model.freeze_all();
  if (!config.lr_rules.empty())
    return model::param_groups_from_rules(model, model::parse_lr_rules(config.lr_rules), lr);
  if (config.unfreeze_from.empty()) {
    model.unfreeze_all();
  } else {
    model.unfreeze_from(config.unfreeze_from);
  }
  return model::param_groups_by_depth(model, lr, config.lr_decay, head);
}

}  // namespace

RunResult finetune(const RunConfig& requested) {
  TLKIT_CHECK(requested.command == "finetune", "finetune() got a '", requested.command, "' config");
  auto run = detail::start_run(requested);
  const auto config = detail::resolve_budgets(requested, run);
  auto& model = run.model;
  if (model.metadata().random_init())
    logger()->warn("'{}' has random weights ({}): transfer needs a pretrained backbone",
                   config.model.string(), model.metadata().weights);
  model.replace_head(run.num_classes, run.data.classes);

  // Stage 1: the new head, the classification layer or the layers from --head-from.
  const auto head = config.head.from.empty() ? model.find_head() : config.head.from;
  detail::Earlier stage1;
  stage1.rows.push_back(train_head(model, head, run.data, config));
  logger()->info("stage 1: {:.2f}% on {}", 100 * stage1.rows.back().accuracy, run.data.eval_split);
  train::ScriptNetwork network(model.module());
  stage1.candidates.push_back({"stage 1 head", train::clone_state(network)});

  // Stage 2: upper layers unfrozen, per-layer learning rates, from the stage-1 head.
  const auto groups = fine_tuning_groups(model, head, config);
  for (const auto& group : groups)
    logger()->info("stage 2: group {} lr {:.3g} ({} tensors)", group.name, group.lr,
                   group.params.size());
  auto optimizer = build_optimizer(config.fit.optimizer, groups);
  network.set_dropout(config.fit.overfit_batches == 0);
  const auto sources = make_sources(run.data, model, detail::loading_options(config));
  auto setup = detail::main_stage(config, "stage 2 (fine-tune)", run.num_classes);
  setup.initial_loss_check = false;  // the head is trained already: the loss starts below ln(C)
  const auto outcome =
      fit_stage(network, *optimizer, config.fit, *sources.train, sources.val.get(), setup);
  network.set_dropout(true);
  return detail::finish_run(run, network, outcome, std::move(stage1), sources, config);
}

}  // namespace tlkit::pipeline
