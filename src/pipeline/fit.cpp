// fit_stage: the trainer with the standard callbacks (see fit.h).
#include <tlkit/pipeline/fit.h>

#include <torch/optim/optimizer.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/ema_callback.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

void report_overfit_check(const train::FitResult& fit, std::int64_t batches) {
  if (fit.history.empty()) return;
  const double accuracy = fit.history.back().get("val_acc").value_or(0);
  if (accuracy >= 0.99) {
    logger()->info("overfit check passed: {:.1f}% on the {} batch(es)", 100 * accuracy, batches);
  } else {
    logger()->warn(
        "overfit check: only {:.1f}% on the {} batch(es) it trained on; with more epochs or a "
        "larger lr "
        "it should reach ~100% - if not, suspect the labels, the preprocessing or the loss",
        100 * accuracy, batches);
  }
}

}  // namespace

StageOutcome fit_stage(train::Network& network, torch::optim::Optimizer& optimizer,
                       const FitOptions& fit, train::BatchSource& train_source,
                       train::BatchSource* val_source, const StageSetup& setup) {
  std::shared_ptr<train::BatchSource> overfit;
  train::BatchSource* train_batches = &train_source;
  if (fit.overfit_batches > 0) {
    // The sanity check of Karpathy's "A Recipe for Training Neural Networks" (2019): overfit the
    // same few batches, used for training and validation.
    overfit = std::make_shared<train::RepeatFirstBatches>(
        std::shared_ptr<train::BatchSource>(&train_source, [](train::BatchSource*) {}),
        fit.overfit_batches);
    train_batches = overfit.get();
    val_source = overfit.get();
    logger()->info(
        "overfit check: training and validating on the same {} batch(es), no early stopping, no "
        "augmentation, no dropout; the accuracy should reach ~100%",
        fit.overfit_batches);
  }

  auto options = trainer_options(fit, setup.num_classes, setup.label);
  options.class_names = setup.class_names;
  options.mix.seed = setup.seed;
  if (overfit) {
    options.mix = {};  // the sanity check trains unregularised
  } else if (options.mix.enabled() && setup.log) {
    logger()->info("{}: {}", setup.label, describe_mixing(options.mix));
  }
  train::Trainer trainer(network, optimizer, options);
  trainer.set_scheduler(build_scheduler(
      setup.schedule, optimizer, setup.schedule_epochs > 0 ? setup.schedule_epochs : fit.epochs,
      fit.schedule_per_batch ? (train_batches->batches_per_epoch() + fit.accumulate - 1) /
                                   fit.accumulate  // optimizer steps per epoch
                             : 1));
  trainer.add_callback(std::make_shared<train::NonFiniteGuard>(
      fit.on_nonfinite == "skip"       ? train::NonFinitePolicy::kSkip
      : fit.on_nonfinite == "rollback" ? train::NonFinitePolicy::kRollback
                                       : train::NonFinitePolicy::kStop,
      10, setup.lr_option));
  if (setup.initial_loss_check)
    trainer.add_callback(std::make_shared<train::InitialLossCheck>(setup.num_classes));
  std::shared_ptr<train::EmaCallback> ema;
  if (fit.ema_decay > 0) {
    ema =
        std::make_shared<train::EmaCallback>(network, val_source, setup.num_classes,
                                             train::EMAOptions().decay(fit.ema_decay).warmup(true));
    trainer.add_callback(ema);
  }
  std::shared_ptr<train::SnapshotEnsemble> snapshots;
  if (fit.snapshots) {
    snapshots = std::make_shared<train::SnapshotEnsemble>(setup.dir / "snapshots");
    trainer.add_callback(snapshots);
  }
  std::shared_ptr<train::BestWeights> best;
  if (val_source) {
    if (fit.patience > 0 && !overfit)
      trainer.add_callback(
          std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions{fit.patience}));
    best = std::make_shared<train::BestWeights>(
        setup.checkpoints ? setup.dir / "checkpoints" / "best.pt" : fs::path());
    trainer.add_callback(best);
  }
  if (setup.extra_callback) trainer.add_callback(setup.extra_callback(ema.get()));
  if (setup.log && train::is_main_process()) {
    trainer.add_callback(std::make_shared<train::CsvLogger>(setup.dir / "metrics.csv"));
    trainer.add_callback(std::make_shared<train::TensorBoardLogger>(setup.dir));
  }
  if (setup.checkpoints) {
    trainer.add_callback(std::make_shared<train::Checkpoint>(setup.dir / "checkpoints"));
    if (setup.resume) trainer.resume(setup.dir / "checkpoints" / "last.pt");
  }

  StageOutcome outcome;
  outcome.fit = trainer.fit(*train_batches, val_source);
  if (!outcome.fit.stop_reason.empty()) logger()->info("{}", outcome.fit.stop_reason);
  if (overfit) report_overfit_check(outcome.fit, fit.overfit_batches);
  outcome.last = train::clone_state(network);
  if (best && !best->weights().empty()) {
    outcome.best = best->weights();
    outcome.best_epoch = best->epoch();
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

}  // namespace tlkit::pipeline
