#include "stage.h"

#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/loader.h>
#include <tlkit/model/export.h>
#include <tlkit/optim/factory.h>
#include <tlkit/optim/settings.h>
#include <tlkit/schedule/spec.h>
#include <tlkit/train/ema_callback.h>
#include <tlkit/train/loader_source.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {

PreparedData open_data(const DataOptions& options) {
  TLKIT_CHECK(!options.source.empty(), "no data source given; pass --data DIR (or cifar10:DIR, fashion-mnist:DIR)");
  TLKIT_CHECK(options.batch_size > 0, "--batch-size must be positive, got ", options.batch_size);
  data::SourceOptions source_options;
  source_options.val_split = options.val_split;
  source_options.seed = options.seed;
  source_options.strict = options.strict;
  source_options.limit = options.limit;
  PreparedData prepared;
  prepared.splits = data::open_source(options.source, source_options);
  prepared.train = prepared.splits.train;
  prepared.val = prepared.splits.val;
  TLKIT_CHECK(prepared.train && prepared.train->size() > 0, "the data source '", options.source,
              "' has no training images");
  TLKIT_CHECK(prepared.val || prepared.splits.test, "the data source '", options.source,
              "' has no validation or test split; use --val-split (e.g. 0.2)");
  if (!prepared.val) prepared.val = prepared.splits.test;
  prepared.eval = prepared.splits.test ? prepared.splits.test : prepared.val;
  prepared.eval_split = prepared.splits.test ? "test" : "val";
  prepared.classes = prepared.train->classes();
  logger()->info("data: {} | val {} images | {} {} images", prepared.train->describe(), prepared.val->size(),
                 prepared.eval_split, prepared.eval->size());
  return prepared;
}

}  // namespace tlkit::pipeline::detail

namespace tlkit::pipeline {

data::Normalization model_normalization(const model::Classifier& model) {
  const auto& meta = model.metadata();
  data::Normalization normalization;
  for (size_t c = 0; c < 3; ++c) {
    normalization.mean[c] = static_cast<float>(meta.mean.at(std::min(c, meta.mean.size() - 1)));
    normalization.std[c] = static_cast<float>(meta.std.at(std::min(c, meta.std.size() - 1)));
  }
  return normalization;
}

std::shared_ptr<data::Transform> eval_transform_for(const model::Classifier& model) {
  const auto& meta = model.metadata();
  return data::eval_transform(static_cast<int>(meta.resize), static_cast<int>(meta.crop), model_normalization(model));
}

}  // namespace tlkit::pipeline

namespace tlkit::pipeline::detail {

std::shared_ptr<data::Transform> train_transform_for(const model::Classifier& model, const DataOptions& options) {
  if (!options.augment) return eval_transform_for(model);
  data::Augmentation augmentation;
  augmentation.scale = {options.min_crop_scale, 1.0};
  augmentation.flip = options.flip;
  return data::train_transform(static_cast<int>(model.metadata().crop), model_normalization(model), augmentation);
}

std::shared_ptr<train::BatchSource> make_source(std::shared_ptr<const data::Dataset> dataset,
                                                std::shared_ptr<data::Transform> transform,
                                                const DataOptions& options, bool shuffle) {
  data::LoaderOptions loader;
  loader.batch_size = static_cast<size_t>(options.batch_size);
  loader.shuffle = shuffle;
  loader.seed = options.seed;
  loader.workers = options.workers;
  return std::make_shared<train::LoaderSource>(
      std::make_shared<data::DataLoader>(std::move(dataset), std::move(transform), loader));
}

Sources make_sources(const PreparedData& data, const model::Classifier& model, const DataOptions& options) {
  Sources sources;
  sources.train = make_source(data.train, train_transform_for(model, options), options, true);
  sources.val = make_source(data.val, eval_transform_for(model), options, false);
  sources.eval = data.eval == data.val ? sources.val : make_source(data.eval, eval_transform_for(model), options, false);
  return sources;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& spec,
                                                        std::vector<torch::optim::OptimizerParamGroup> groups) {
  TLKIT_CHECK(!groups.empty(), "nothing to train: every parameter is frozen; unfreeze some layers");
  return optim::make_optimizer(optim::parse_optimizer_settings(spec), std::move(groups));
}

double spec_lr(const std::string& optimizer_spec, double fallback) {
  return optim::parse_optimizer_settings(optimizer_spec).settings.lr.value_or(fallback);
}

StageOutcome run_stage(train::Network& network, torch::optim::Optimizer& optimizer, const std::string& schedule,
                       const FitOptions& fit, train::BatchSource& train_source, train::BatchSource* val_source,
                       const StageSetup& setup) {
  train::TrainerOptions trainer_options;
  trainer_options.epochs = fit.epochs;
  trainer_options.num_classes = setup.num_classes;
  trainer_options.device = fit.device;
  trainer_options.schedule_step = fit.schedule_per_batch ? train::ScheduleStep::kPerBatch : train::ScheduleStep::kPerEpoch;
  trainer_options.grad_clip_norm = fit.grad_clip;
  trainer_options.label = setup.label;
  trainer_options.progress = fit.progress;

  std::shared_ptr<train::BatchSource> overfit;
  train::BatchSource* train_batches = &train_source;
  if (fit.overfit_batches > 0) {
    // The course's sanity check: the same few batches for training and validation.
    overfit = std::make_shared<train::RepeatFirstBatches>(
        std::shared_ptr<train::BatchSource>(&train_source, [](train::BatchSource*) {}), fit.overfit_batches);
    train_batches = overfit.get();
    val_source = overfit.get();
    logger()->info("overfit check: training and validating on the same {} batch(es), no early stopping, no "
                   "augmentation, no dropout; the accuracy should reach ~100%", fit.overfit_batches);
  }

  train::Trainer trainer(network, optimizer, trainer_options);
  schedule::ScheduleContext context;
  context.steps_per_epoch = fit.schedule_per_batch ? train_batches->batches_per_epoch() : 1;
  context.total_steps = fit.epochs * context.steps_per_epoch;
  trainer.set_scheduler(schedule::make_scheduler(schedule, optimizer, context));

  trainer.add_callback(std::make_shared<train::NonFiniteGuard>());
  if (setup.initial_loss_check) trainer.add_callback(std::make_shared<train::InitialLossCheck>(setup.num_classes));
  std::shared_ptr<train::EmaCallback> ema;
  if (fit.ema_decay > 0) {
    ema = std::make_shared<train::EmaCallback>(network, val_source, setup.num_classes,
                                               train::EMAOptions().decay(fit.ema_decay).warmup(true));
    trainer.add_callback(ema);
  }
  std::shared_ptr<train::SnapshotEnsemble> snapshots;
  if (fit.snapshots) {
    snapshots = std::make_shared<train::SnapshotEnsemble>(setup.dir / "snapshots");
    trainer.add_callback(snapshots);
  }
  std::shared_ptr<train::EarlyStopping> early;
  if (val_source) {
    train::EarlyStoppingOptions early_options;
    early_options.monitor = "val_loss";
    early_options.patience = fit.patience > 0 && !overfit ? fit.patience : fit.epochs + 1;
    early_options.min_delta = fit.min_delta;
    early_options.restore_best = false;
    early_options.keep_best = true;
    early = std::make_shared<train::EarlyStopping>(early_options);
    trainer.add_callback(early);
  }
  trainer.add_callback(std::make_shared<train::CsvLogger>(setup.dir / "metrics.csv"));
  trainer.add_callback(std::make_shared<train::TensorBoardLogger>(setup.dir));
  if (setup.checkpoints) {
    trainer.add_callback(std::make_shared<train::Checkpoint>(setup.dir / "checkpoints", "val_loss"));
    if (setup.resume) {
      const auto last = setup.dir / "checkpoints" / "last.pt";
      TLKIT_CHECK(fs::exists(last), "cannot resume: '", last.string(), "' does not exist; run without --resume");
      trainer.resume(last);
    }
  }

  StageOutcome outcome;
  outcome.fit = trainer.fit(*train_batches, val_source);
  if (!outcome.fit.stop_reason.empty()) logger()->info("{}", outcome.fit.stop_reason);
  if (overfit && !outcome.fit.history.empty()) {
    const double accuracy = outcome.fit.history.back().get("val_acc").value_or(0);
    if (accuracy >= 0.99) {
      logger()->info("overfit check passed: {:.1f}% on the {} batch(es)", 100 * accuracy, fit.overfit_batches);
    } else {
      logger()->warn("overfit check: only {:.1f}% on the {} batch(es) it trained on; with more epochs or a "
                     "larger lr it should reach ~100% - if not, suspect the labels, the preprocessing or "
                     "the loss", 100 * accuracy, fit.overfit_batches);
    }
  }
  outcome.last = train::clone_state(network);
  if (early && !early->best_state().empty()) {
    outcome.best = early->best_state();
    outcome.best_epoch = early->tracker().best_epoch();
  }
  if (ema) {
    train::ExponentialMovingAverage::SwapGuard averaged(ema->average());
    outcome.ema = train::clone_state(network);
  }
  if (snapshots) {
    outcome.snapshots = snapshots->snapshots();
    outcome.snapshot_epochs = snapshots->snapshot_epochs();
  }
  return outcome;
}

std::vector<ResultRow> evaluate_outcome(train::Network& network, const StageOutcome& outcome,
                                        train::BatchSource& source, std::int64_t num_classes,
                                        const std::string& prefix, const c10::Device& device) {
  std::vector<ResultRow> rows;
  auto add = [&](const std::string& name, const train::Evaluation& e) {
    rows.push_back({prefix + name, e.accuracy, e.loss, e.examples});
  };
  const auto own = train::clone_state(network);
  auto evaluate_state = [&](const train::NamedTensors& state) {
    train::copy_state(network, state);
    return train::evaluate(network, source, num_classes, device);
  };
  add("last", evaluate_state(outcome.last));
  if (!outcome.best.empty()) add("best (epoch " + std::to_string(outcome.best_epoch) + ")", evaluate_state(outcome.best));
  if (!outcome.ema.empty()) add("EMA", evaluate_state(outcome.ema));
  train::copy_state(network, own);
  if (!outcome.snapshots.empty())
    add("snapshot ensemble (" + std::to_string(outcome.snapshots.size()) + ")",
        train::evaluate_ensemble(network, outcome.snapshots, source, num_classes, device));
  return rows;
}

std::string export_best(model::Classifier& model, train::Network& network, const StageOutcome& outcome,
                        train::BatchSource* val, std::int64_t num_classes, const fs::path& path,
                        const c10::Device& device) {
  std::vector<std::pair<std::string, const train::NamedTensors*>> candidates{{"last", &outcome.last}};
  if (!outcome.best.empty()) candidates.emplace_back("best", &outcome.best);
  if (!outcome.ema.empty()) candidates.emplace_back("EMA", &outcome.ema);
  size_t chosen = 0;
  if (val && candidates.size() > 1) {
    double best_accuracy = -1;
    for (size_t i = 0; i < candidates.size(); ++i) {
      train::copy_state(network, *candidates[i].second);
      const double accuracy = train::evaluate(network, *val, num_classes, device).accuracy;
      if (accuracy > best_accuracy) {
        best_accuracy = accuracy;
        chosen = i;
      }
    }
  }
  train::copy_state(network, *candidates[chosen].second);
  model.train(false);
  model::export_model(model, path);
  return candidates[chosen].first;
}

}  // namespace tlkit::pipeline::detail
