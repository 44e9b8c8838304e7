// start_run / finish_run: the beginning and the end every training command shares (see run.h).
#include "run.h"

#include "calibration.h"

#include <algorithm>

#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/core/strings.h>
#include <tlkit/data/dataset.h>
#include <tlkit/data/subset.h>
#include <tlkit/model/export.h>
#include <tlkit/model/file_hash.h>
#include <tlkit/model/script_checks.h>
#include <tlkit/pipeline/interpretation.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/loss.h>
#include <tlkit/train/interpretation.h>
#include <tlkit/train/network.h>
#include <tlkit/train/precision.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {
namespace {

// The learning rate at the start of each of `epochs` epochs of a schedule laid out for `layout`
// epochs (one step per epoch): what a resumed run follows, since its checkpoint keeps the layout.
std::vector<double> schedule_lrs(const std::string& spec, std::int64_t layout,
                                 std::int64_t epochs) {
  auto weight = torch::zeros({1}, torch::requires_grad());
  torch::optim::SGD optimizer({weight}, torch::optim::SGDOptions(1.0));
  auto scheduler = build_scheduler(spec, optimizer, std::max<std::int64_t>(1, layout), 1);
  std::vector<double> lrs;
  if (scheduler->uses_metric()) return lrs;  // follows validation, not the length
  for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
    lrs.push_back(scheduler->get_last_lr().at(0));
    scheduler->step();
  }
  return lrs;
}

// A resume with another --epochs follows the schedule laid out for the run's length: refused
// when the added epochs would train at lr 0 (the schedule has ended), said in the log otherwise.
void check_resumed_length(const RunConfig& earlier, const RunConfig& config,
                          std::vector<std::string>& conflicts) {
  const auto before = earlier.fit.epochs, now = config.fit.epochs;
  if (before == now || before <= 0 || now <= 0) return;
  const auto& spec = earlier.fit.schedule;
  const auto laid_out = schedule_lrs(spec, before, std::max(before, now));
  if (laid_out.empty() || laid_out == schedule_lrs(spec, now, std::max(before, now))) return;
  if (now < before) {
    logger()->info(
        "resuming with {} epochs: the schedule '{}' keeps its layout for {} epochs and "
        "is cut off at epoch {}",
        now, spec, before, now);
    return;
  }
  const auto added = before + 1 == now
                         ? "epoch " + std::to_string(now)
                         : "epochs " + std::to_string(before + 1) + "-" + std::to_string(now);
  const auto first = laid_out.begin() + before;
  const auto [low, high] = std::minmax_element(first, laid_out.end());
  if (*high <= 1e-9 * laid_out.front()) {
    conflicts.push_back("--epochs: the run's schedule '" + spec + "' was laid out for " +
                        std::to_string(before) + " epochs and has ended there (lr 0), so " + added +
                        " would train at lr 0; to train longer, start a new run from its model "
                        "(--model " +
                        (config.out / "model.pt").string() +
                        " --out another folder), or rerun with --epochs " + std::to_string(now) +
                        " without --resume");
    return;
  }
  logger()->warn(
      "resuming with {} epochs: the schedule '{}' keeps its layout for {} epochs, so {} "
      "train at {:.3g} to {:.3g} times the base learning rate",
      now, spec, before, added, *low, *high);
}

// The layers the settings name exist in the model: a typo is found before the run folder is
// touched, not after stage 1.
void check_layers(const RunConfig& config, const model::Classifier& model) {
  if (!config.unfreeze_from.empty()) model.layer_index(config.unfreeze_from);
  if (config.command == "finetune" && !config.head.from.empty() && config.head.from != "auto")
    model.layer_index(config.head.from);
}

// The input model must outlive a new run in the same folder: one of the folder's own files (its
// exported model.pt, or the run set aside) is replaced or removed by the run.
void check_model_outside(const RunFolder& folder, const RunConfig& config) {
  if (config.resume || !folder.owns(config.model)) return;
  fail("the model '", config.model.string(), "' is a file of the run in '", config.out.string(),
       "', which a new run there replaces: write the new run to another folder (e.g. '",
       config.out.string(), "-2') to train further from it");
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

// finetune on small data: the rule that decides between the val split and k-fold
// cross-validation over every labelled image (see RunConfig::cv_folds), applied to `data`.
void plan_decisions(PreparedData& data, const RunConfig& config) {
  const auto val_images = data.val ? std::to_string(data.val->size()) : std::string("0");
  if (config.command != "finetune") {
    data.decided_by = data.val ? "the val split (" + val_images + " images)"
                               : "the settings (no val split: the last weights are exported)";
    return;
  }
  std::string small;  // why validation is small, empty when it is not
  if (!data.val) {
    small = "there is no val split";
  } else {
    const auto counts = data::class_counts(*data.val);
    const auto fewest = std::min_element(counts.begin(), counts.end());
    if (*fewest < static_cast<size_t>(RunConfig::kSmallValidation))
      small = "val has " + std::to_string(*fewest) + " image(s) of class '" +
              data.classes.at(static_cast<size_t>(fewest - counts.begin())) + "' (under " +
              std::to_string(RunConfig::kSmallValidation) + ")";
  }
  const auto wanted = config.cv_folds < 0 ? (small.empty() ? 0 : 5) : config.cv_folds;
  if (wanted == 0) {
    data.decided_by = data.val ? "the val split (" + val_images + " images" +
                                     (config.cv_folds == 0 ? ", --no-cv" : "") + ")"
                               : "the settings (no val split, --no-cv: the budgets run to the "
                                 "end and the last weights are exported)";
    return;
  }
  // Every labelled image: train and val pooled (the test split stays out of every choice).
  if (data.val) {
    data.train = std::make_shared<data::Concat>(
        std::vector<std::shared_ptr<const data::Dataset>>{data.train, data.val},
        "train + val of '" + config.data.source + "'");
    if (data.eval == data.val) {
      data.eval = nullptr;
      data.eval_split.clear();
    }
    data.val = nullptr;
  }
  const auto labels = data.train->labels();
  const auto folds = data::usable_folds(labels, wanted);
  const auto why = small.empty() ? "--cv-folds " + std::to_string(wanted) : small;
  if (folds < 2) {
    data.decided_by = "the settings: " + why + ", and a class has a single image, too few to "
                      "cross-validate; every image trains, the budgets run to the end and the "
                      "last weights are exported";
  } else {
    data.cv_folds = folds;
    // Stage 2's folds are whole fine-tunings: at most 3 unless --cv-folds asks (see
    // cross_validation.h).
    const auto stage2 = config.cv_folds >= 2 ? folds : std::min<std::int64_t>(folds, 3);
    data.decided_by = "cross-validation on all " + std::to_string(labels.size()) +
                      " labelled images (" + why + "; stage 1: " + std::to_string(folds) +
                      " folds on cached features, stage 2: " + std::to_string(stage2) +
                      " folds), then one fit on all of them";
  }
  logger()->info("choices (head, stage 2 length, exported weights): by {}", data.decided_by);
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
  // The model file's content, on every resume: a file replaced in place is another model.
  if (!earlier.model_sha256.empty() && earlier.model_sha256 != config.model_sha256)
    conflicts.push_back("--model: the run used '" + earlier.model.string() + "', now '" +
                        config.model.string() + "': its content differs" +
                        (earlier.model == config.model ? " (the same path, another file)" : ""));
  check_resumed_length(earlier, config, conflicts);
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
  auto data = open_data(config.data);
  plan_decisions(data, config);
  auto model = load_model(config.model, config.data.preprocess, config.fit.device);
  warn_if_upscaled(*data.train, model);
  {
    train::ScriptNetwork network(model.module());
    train::check_bf16_convolutions(network, train::parse_precision(config.fit.precision),
                                   config.fit.device);
  }
  check_layers(config, model);
  // The model's content, hashed once: config.json carries it and a resume compares it.
  RunConfig checked = config;
  checked.model_sha256 = model::sha256_file(config.model);
  // Rank 0 alone owns, locks and cleans the run folder; the others wait for it (they read from it
  // only when resuming). Every check comes before the earlier run is touched.
  std::unique_ptr<RunFolder> folder;
  if (train::is_main_process()) {
    folder = std::make_unique<RunFolder>(config.out, config.command);
    check_model_outside(*folder, checked);
  }
  if (config.resume) {
    check_resume(checked);
    // Before any work: a renamed class folder would shift every label.
    if (fs::exists(config.out / "checkpoints" / "last.pt"))
      train::check_checkpoint_classes(config.out / "checkpoints" / "last.pt", data.classes);
  }
  if (folder) {
    folder->remove_stale_temporaries();
    if (!config.resume) folder->start_afresh({"features"});
    // A resume keeps the run's config.json until it has trained (a refused one leaves it as it
    // was).
    if (!config.resume) checked.save(config.out / "config.json");
  }
  if (auto* world = train::world()) world->barrier();
  torch::manual_seed(config.data.seed);
  const auto num_classes = static_cast<std::int64_t>(data.classes.size());
  return {checked, std::move(data), std::move(model), num_classes, std::move(folder)};
}

RunConfig resolve_budgets(const RunConfig& config, const Started& run) {
  const auto images = run.data.train->size();
  auto resolved = run.requested.resolved(images);  // with the model's hash
  if (resolved.fit.class_weights == "auto") {
    resolved.fit.class_weights = train::format_class_weights(
        train::balanced_class_weights(data::class_counts(*run.data.train)));
    logger()->info("class weights (auto, n / (classes x count) on the training split): {}",
                   resolved.fit.class_weights);
  }
  if (resolved.data.augment &&
      (resolved.data.augment_policy != "none" || resolved.data.random_erasing > 0))
    logger()->info("training augmentation: {}", describe_augmentation(resolved.data));
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
  setup.seed = config.data.seed;
  setup.resume = config.resume && fs::exists(config.out / "checkpoints" / "last.pt");
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
  precision_.set_batch_norm_updates(fit.batch_norm != "frozen");
  auto outcome = fit_stage(precision_, optimizer, fit, *sources.train, sources.val.get(), setup);
  precision_.set_dropout(true);
  precision_.set_batch_norm_updates(true);
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
                     Earlier earlier, const Sources& sources, const RunConfig& config,
                     const Decision& decided) {
  const auto num_classes = run.num_classes;
  const auto& device = config.fit.device;
  const std::string row_prefix = config.command == "finetune" ? "fine-tuning: " : "train: ";
  TLKIT_CHECK(earlier.rows.size() == earlier.candidates.size(),
              "finish_run: one row per earlier candidate");
  auto candidates = std::move(earlier.candidates);
  auto rows = std::move(earlier.rows);
  const auto first_own = candidates.size();
  if (!outcome.last.empty()) {
    auto own = sources.train ? stage_candidates(outcome, network, *sources.train, device)
                             : stage_candidates(outcome);
    for (auto& candidate : own) candidates.push_back(std::move(candidate));
  }
  network.train(false);
  stop_if_interrupted("evaluating the trained model");
  // Every candidate of this stage on the evaluation split (reported only), then the ensemble.
  // Each image's outcome is kept for the exported candidate's top losses.
  std::vector<train::ExampleOutcomes> own_outcomes(candidates.size() - first_own);
  for (size_t i = first_own; i < candidates.size(); ++i) {
    ResultRow row;
    row.name = row_prefix + candidates[i].name;
    if (sources.eval) {
      train::copy_state(network, candidates[i].weights);
      const auto e = train::evaluate(network, *sources.eval, num_classes, device,
                                     train::kDefaultTopK, own_outcomes[i - first_own]);
      row.accuracy = e.accuracy;
      row.loss = e.loss;
      row.examples = e.examples;
      row.evaluation = e;
    }
    rows.push_back(row);
    stop_if_interrupted("evaluating the trained model");
  }
  if (!outcome.snapshots.empty() && sources.eval) {
    const auto e =
        train::evaluate_ensemble(network, outcome.snapshots, *sources.eval, num_classes, device);
    rows.push_back(
        {row_prefix + "snapshot ensemble (" + std::to_string(outcome.snapshots.size()) + ")",
         e.accuracy, e.loss, e.examples, false, e});
  }
  Selection selection;
  if (sources.val) {
    selection = select_on_validation(network, candidates, *sources.val, config.fit.monitor,
                                     num_classes, device);
  } else {
    // No val split: the decision made without it (cross-validation), else the last weights.
    const auto wanted = decided.candidate.empty() ? std::string("last") : decided.candidate;
    const auto found = std::find_if(candidates.begin(), candidates.end(),
                                    [&](const Candidate& c) { return c.name == wanted; });
    TLKIT_CHECK(found != candidates.end(), "finish_run: no candidate named '", wanted, "'");
    selection.chosen = static_cast<size_t>(found - candidates.begin());
    const auto broken = model::first_nonfinite(found->weights);
    TLKIT_CHECK(broken.empty(), "no model to export: the ", wanted, " weights hold NaN/Inf (",
                broken, "); the training diverged: lower the learning rate (or try 'tlkit lr-find')");
    selection.reason = decided.reason.empty()
                           ? "no val split: the last weights of the full budget"
                           : decided.reason;
    train::copy_state(network, found->weights);
  }
  stop_if_interrupted("choosing the model to export");
  // --calibrate: T on held-out predictions of the chosen weights, divided into the head; the
  // exported row is then measured again (same accuracy, calibrated NLL / ECE).
  HeldOut held;
  held.val = sources.val.get();
  held.fold_log_probabilities = decided.held_log_probabilities;
  held.fold_labels = decided.held_labels;
  held.fold_description = decided.held_out;
  if (sources.eval && run.data.eval != run.data.val) {
    held.eval = sources.eval.get();
    held.eval_split = run.data.eval_split;
  }
  auto calibration = calibrate_exported(config, run.model, network, held);
  if (calibration.fitted && sources.eval) {
    train::ExampleOutcomes outcomes;
    const auto e = train::evaluate(network, *sources.eval, num_classes, device,
                                   train::kDefaultTopK, outcomes);
    auto& row = rows.at(selection.chosen);
    row.loss = e.loss;
    row.evaluation = e;
    if (selection.chosen >= first_own) own_outcomes[selection.chosen - first_own] = std::move(outcomes);
  }
  stop_if_interrupted("calibrating the model to export");
  RunResult result;
  result.calibration = std::move(calibration);
  result.split = run.data.eval_split;
  result.classes = run.data.classes;
  result.exported = config.out / "model.pt";
  result.exported_from = candidates[selection.chosen].name;
  result.exported_because = selection.reason;
  result.decisions = decided.report;
  rows.at(selection.chosen).exported = true;  // one row per candidate, in candidate order
  result.rows = std::move(rows);
  if (train::is_main_process()) {
    const auto& exported = result.rows.at(selection.chosen);
    if (exported.examples > 0 && exported.evaluation.confusion.defined() && run.data.eval) {
      train::ExampleOutcomes outcomes;
      if (selection.chosen >= first_own) {
        outcomes = std::move(own_outcomes[selection.chosen - first_own]);
      } else if (!train::world() && sources.eval) {
        // An earlier stage's weights (now in the network): one more pass for their outcomes.
        train::evaluate(network, *sources.eval, num_classes, device, train::kDefaultTopK, outcomes);
      }
      const auto interpretation =
          write_interpretation(config.out, exported.evaluation, result.classes,
                               outcomes.size() > 0 ? &outcomes : nullptr, run.data.eval.get());
      result.pictures =
          interpretation_markdown(interpretation, exported.evaluation, result.classes);
    }
  }
  auto& model = run.model;
  model.set_weights_origin("tlkit " + config.command + " on " + config.data.source + " (from " +
                           model.metadata().weights + ")");
  model.train(false);
  if (train::is_main_process()) {
    model::export_model(model, result.exported);
    logger()->info("exported the {} weights to {} ({})", result.exported_from,
                   result.exported.string(), result.exported_because);
    write_report(run.requested, config, result, outcome.fit.history);
    if (config.resume) run.requested.save(config.out / "config.json");
    if (run.folder) run.folder->mark_finished();
  }
  // No rank leaves before the files are written: a launcher reads them when the ranks are done.
  if (auto* world = train::world()) world->barrier();
  return result;
}

}  // namespace tlkit::pipeline::detail
