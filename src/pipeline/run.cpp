// start_run / finish_run: the beginning and the end every training command shares (see run.h).
#include "run.h"

#include <torch/utils.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>
#include <tlkit/model/export.h>
#include <tlkit/model/file_hash.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/network.h>
#include <tlkit/train/precision.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {
namespace {

// What a fresh run must not inherit from an earlier run into the same folder. Cached features
// stay: they are keyed and re-extracted when stale.
void clear_previous_run(const fs::path& out) {
  std::error_code ignored;
  for (const auto* name : {"checkpoints", "snapshots", "stage1", "baseline"})
    fs::remove_all(out / name, ignored);
  for (const auto* name : {"model.pt", "metrics.csv", "summary.json", "results.md",
                           "curves_loss.png", "curves_accuracy.png"})
    fs::remove(out / name, ignored);
  for (const auto& entry : fs::directory_iterator(out, ignored))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      fs::remove(entry.path(), ignored);
}

// A signal after the last training step (during the final evaluation, selection and export):
// stop there, the training kept in its checkpoint, so that --resume evaluates and exports it.
// Data parallel: every rank stops at the same point (any rank's signal stops all).
void stop_if_interrupted(const std::string& doing) {
  const int signal = train::agreed_interrupt_signal();
  if (signal == 0) return;
  throw Interrupted(signal, "stopped by " + signal_name(signal) + " while " + doing +
                                "; the training itself is complete and kept in "
                                "checkpoints/last.pt: the same command with --resume evaluates "
                                "and exports it");
}

}  // namespace

// A --resume must continue the run in the folder, not another: the settings that shape it are
// those of RUN/config.json, and the model file holds the same bytes.
void check_resume(const RunConfig& config) {
  const auto file = config.out / "config.json";
  if (!fs::exists(file)) return;
  RunConfig earlier;
  try {
    earlier = RunConfig::load(file);
  } catch (const Error& e) {
    logger()->warn("cannot compare with the run's settings ({}); resuming anyway", e.what());
    return;
  }
  auto conflicts = config.resume_conflicts(earlier);
  if (earlier.model != config.model) {
    std::error_code ec;
    if (!fs::exists(earlier.model, ec))
      logger()->warn("the run's model '{}' is gone; resuming with '{}'", earlier.model.string(),
                     config.model.string());
    else if (!fs::equivalent(earlier.model, config.model, ec) &&
             model::sha256_file(earlier.model) != model::sha256_file(config.model))
      conflicts.push_back("--model: the run used '" + earlier.model.string() + "', now '" +
                          config.model.string() + "' (another file)");
  }
  if (earlier.data.source != config.data.source)
    logger()->info("resuming on '{}' (the run started on '{}')", config.data.source,
                   earlier.data.source);
  TLKIT_CHECK(conflicts.empty(), "--resume would not continue the run in '", config.out.string(),
              "', whose settings differ: ", join(conflicts, "; "),
              ". Give the run's settings (--config ", file.string(),
              " --resume repeats them) or start a new run without --resume");
}

Started start_run(const RunConfig& config) {
  config.validate();
  if (config.resume) check_resume(config);
  auto data = open_data(config.data);
  auto model = load_model(config.model, config.data.preprocess, config.fit.device);
  warn_if_upscaled(*data.train, model);
  {
    train::ScriptNetwork network(model.module());
    train::check_bf16_convolutions(network, train::parse_precision(config.fit.precision),
                                   config.fit.device);
  }
  if (config.resume)  // before any work: a renamed class folder would shift every label
    train::check_checkpoint_classes(config.out / "checkpoints" / "last.pt", data.classes);
  // Rank 0 alone makes and cleans the run folder; the others wait for it (they read from it only
  // when resuming).
  if (train::is_main_process()) {
    fs::create_directories(config.out);
    if (const auto stale = remove_stale_temporaries(config.out))
      logger()->info("removed {} unfinished temporary file{} of a killed run in {}", stale,
                     stale == 1 ? "" : "s", config.out.string());
    if (!config.resume) clear_previous_run(config.out);
    config.save(config.out / "config.json");
  }
  if (auto* world = train::world()) world->barrier();
  torch::manual_seed(config.data.seed);
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  return {config, std::move(data), std::move(model), num_classes};
}

RunConfig resolve_budgets(const RunConfig& config, const Started& run) {
  const auto images = run.data.train->size();
  auto resolved = config.resolved(images);
  if (config.command == "finetune") {
    logger()->info("stage 1 budget: {} images, batch {}, {} epochs ({} steps), patience {} epochs",
                   images, resolved.head.batch_size, resolved.head.epochs, resolved.head.steps,
                   resolved.head.patience);
  }
  logger()->info("{} budget: batch {}, {} epochs, patience {} epochs{}",
                 config.command == "finetune" ? "stage 2" : "training", resolved.data.batch_size,
                 resolved.fit.epochs, resolved.fit.patience,
                 resolved.fit.val_every > 1
                     ? ", validated every " + std::to_string(resolved.fit.val_every) + " epochs"
                     : std::string());
  return resolved;
}

StageSetup main_stage(const RunConfig& config, const std::string& label,
                      const std::vector<std::string>& classes) {
  StageSetup setup;
  setup.dir = config.out;
  setup.label = label;
  setup.schedule = config.fit.schedule;
  setup.num_classes = static_cast<std::int64_t>(classes.size());
  setup.class_names = classes;
  setup.resume = config.resume;
  return setup;
}

namespace {
train::Network& laid_out(train::ScriptNetwork& script, bool channels_last) {
  if (channels_last) train::set_channels_last(script, true);
  return script;
}
}  // namespace

StageNetwork::StageNetwork(const torch::jit::Module& module, const FitOptions& fit)
    : script_(module),
      precision_(laid_out(script_, fit.channels_last), train::parse_precision(fit.precision),
                 fit.channels_last, fit.device),
      channels_last_(fit.channels_last) {}

StageOutcome StageNetwork::fit(torch::optim::Optimizer& optimizer, const FitOptions& fit,
                               const Sources& sources, const StageSetup& setup) {
  precision_.set_dropout(fit.overfit_batches == 0);
  auto outcome = fit_stage(precision_, optimizer, fit, *sources.train, sources.val.get(), setup);
  precision_.set_dropout(true);
  if (channels_last_) train::set_channels_last(script_, false);
  return outcome;
}

DataOptions loading_options(const RunConfig& config) {
  auto options = config.data;
  if (config.fit.overfit_batches > 0)
    options.augment = false;  // the sanity check trains unregularised
  return options;
}

RunResult finish_run(Started& run, train::Network& network, const StageOutcome& outcome,
                     Earlier earlier, const Sources& sources, const RunConfig& config) {
  const auto num_classes = run.num_classes;
  const auto& device = config.fit.device;
  const std::string row_prefix = config.command == "finetune" ? "fine-tuning: " : "train: ";
  TLKIT_CHECK(earlier.rows.size() == earlier.candidates.size(),
              "finish_run: one row per earlier candidate");
  auto candidates = std::move(earlier.candidates);
  auto rows = std::move(earlier.rows);
  const auto first_own = candidates.size();
  for (auto& candidate : stage_candidates(outcome)) candidates.push_back(std::move(candidate));
  network.train(false);
  stop_if_interrupted("evaluating the trained model");
  // Every candidate of this stage on the evaluation split (reported only), then the ensemble.
  for (size_t i = first_own; i < candidates.size(); ++i) {
    train::copy_state(network, candidates[i].weights);
    const auto e = train::evaluate(network, *sources.eval, num_classes, device);
    rows.push_back({row_prefix + candidates[i].name, e.accuracy, e.loss, e.examples});
    stop_if_interrupted("evaluating the trained model");
  }
  if (!outcome.snapshots.empty()) {
    const auto e =
        train::evaluate_ensemble(network, outcome.snapshots, *sources.eval, num_classes, device);
    rows.push_back(
        {row_prefix + "snapshot ensemble (" + std::to_string(outcome.snapshots.size()) + ")",
         e.accuracy, e.loss, e.examples});
  }
  const auto selection = select_on_validation(network, candidates, *sources.val, config.fit.monitor,
                                              num_classes, device);
  stop_if_interrupted("choosing the model to export");
  RunResult result;
  result.split = run.data.eval_split;
  result.exported = config.out / "model.pt";
  result.exported_from = candidates[selection.chosen].name;
  result.exported_because = selection.reason;
  rows.at(selection.chosen).exported = true;  // one row per candidate, in candidate order
  result.rows = std::move(rows);
  auto& model = run.model;
  model.set_weights_origin("tlkit " + config.command + " on " + config.data.source + " (from " +
                           model.metadata().weights + ")");
  model.train(false);
  if (train::is_main_process()) {
    model::export_model(model, result.exported);
    logger()->info("exported the {} weights to {} ({})", result.exported_from,
                   result.exported.string(), result.exported_because);
    write_report(run.requested, config, result, outcome.fit.history);
  }
  // No rank leaves before the files are written: a launcher reads them when the ranks are done.
  if (auto* world = train::world()) world->barrier();
  return result;
}

}  // namespace tlkit::pipeline::detail
