// The two-stage transfer pipeline: stage 1 (a new head on cached features), stage 2 (fine-tuning).
#include <tlkit/core/interrupt.h>
#include <tlkit/pipeline/transfer.h>

#include <torch/csrc/jit/api/module.h>
#include <torch/optim/optimizer.h>

#include <algorithm>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/random.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/train/distributed.h>

#include "cross_validation.h"
#include "run.h"
#include "stage1.h"

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace detail {

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
  return model::param_groups_by_depth(model, lr, config.lr_decay, head, config.lr_floor);
}

}  // namespace detail

namespace {

// --baseline scratch: the same network from fresh random weights, every layer at one lr, with
// stage 2's budget (batch, epochs, schedule, early stopping, EMA) and its own folder
// (RUN/baseline: metrics, checkpoints, so --resume continues it too). Its best single model on
// validation, measured on the evaluation split like the transfer rows; never exported.
ResultRow scratch_baseline(const detail::Started& run, const model::Classifier& transferred,
                           const RunConfig& config) {
  auto model = transferred.clone();
  torch::manual_seed(data::derive_seed(config.data.seed, 0x5c7a7c4b));  // the baseline's own stream
  model.reinitialize();
  model.unfreeze_all();
  auto fit = config.fit;
  fit.optimizer = config.baseline_optimizer;  // resolved: never empty here
  fit.batch_norm = "train";  // random weights: no statistics worth keeping
  auto optimizer =
      build_optimizer(fit.optimizer, model::single_param_group(model, base_lr(fit.optimizer)),
                      fit.decay_all);
  detail::StageNetwork stage(model.module(), fit);
  const auto sources = make_sources(run.data, model, detail::loading_options(config));
  auto setup = detail::main_stage(config, "baseline (from scratch)", run.data.classes);
  setup.dir = config.out / "baseline";
  setup.lr_option = "--baseline-optimizer";
  setup.resume = config.resume && fs::exists(setup.dir / "checkpoints" / "last.pt");
  logger()->info(
      "baseline: the same network from random weights, every layer, {}, stage 2's budget",
      fit.optimizer);
  const auto outcome = stage.fit(*optimizer, fit, sources, setup);
  auto& network = stage.network();
  network.train(false);
  const auto candidates = stage_candidates(outcome, network, *sources.train, fit.device);
  const auto num_classes = static_cast<std::int64_t>(run.data.classes.size());
  size_t chosen = 0;  // without a val split: the last weights of the full budget
  if (sources.val)
    chosen = select_on_validation(network, candidates, *sources.val, fit.monitor, num_classes,
                                  fit.device)
                 .chosen;
  train::copy_state(network, candidates[chosen].weights);
  train::Evaluation e;
  if (sources.eval) e = train::evaluate(network, *sources.eval, num_classes, fit.device);
  return {"baseline: from scratch, " + candidates[chosen].name + " (not exported)",
          e.accuracy, e.loss, e.examples, false, e};
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
  train::ScriptNetwork whole(model.module());
  const auto pretrained = train::clone_state(whole);  // the new head in place, before stage 1

  // Stage 1: the new head, the classification layer or the layers from --head-from (auto: the
  // depth with the best estimate).
  const auto head_result = detail::stage1(model, run.data, config);
  const auto& head = head_result.head;
  detail::Earlier stage1;
  stage1.rows.push_back(head_result.row);
  if (head_result.row.examples > 0)
    logger()->info("stage 1: {:.2f}% on {}", 100 * stage1.rows.back().accuracy,
                   run.data.eval_split);
  stage1.candidates.push_back({"stage 1 head", train::clone_state(whole)});

  // A signal during stage 1's last epoch: stop before stage 2 starts (nothing of it to keep).
  throw_if_interrupted("stage 1 finished; stage 2 had not started (the cached features are kept)");

  // Small data: stage 2's length and the exported weights by cross-validation, then one fit on
  // every image with them. Without a val split and without cross-validation: the full budget,
  // the last weights.
  auto fit = config.fit;
  auto setup = detail::main_stage(config, "stage 2 (fine-tune)", run.data.classes);
  setup.initial_loss_check = false;  // the head is trained already: the loss starts below ln(C)
  detail::Decision decided;
  auto loading = detail::loading_options(config);
  if (run.data.cv_folds >= 2) {
    const auto choice =
        detail::cross_validate_stage2(run, head_result, pretrained, stage1.candidates[0].weights,
                                      config);
    if (choice) {
      decided = {choice->candidate, choice->reason, choice->report, choice->held_log_probabilities,
                 choice->held_labels, choice->held_out};
      if (!choice->augment && loading.augment && choice->candidate != "stage 1 head") {
        loading.augment = false;
        logger()->info("stage 2 on all images: without augmentation (chosen by the folds)");
      }
      if (choice->epochs > 0 && choice->epochs < choice->layout) {
        fit.epochs = choice->epochs;
        setup.schedule_epochs = choice->layout;
        logger()->info("stage 2 on all images: {} of the {} epochs its schedule is laid out for",
                       choice->epochs, choice->layout);
      }
    } else {
      decided.candidate = "last";
      decided.reason = "the last weights of stage 2's full budget on every image (the "
                       "cross-validation of stage 2 was over its compute budget: cv/plan.json)";
      decided.held_out = "stage 2's cross-validation was skipped (over its compute budget), so "
                         "no held-out predictions of the exported weights exist; T is never "
                         "fitted on the training images";
    }
    throw_if_interrupted("cross-validation is complete (kept in cv/); --resume runs the final fit");
    // The final fit starts from the same random state whether the folds ran now or earlier.
    torch::manual_seed(data::derive_seed(config.data.seed, 0xf17a1));
  }
  if (!run.data.val && run.data.cv_folds < 2) {
    decided.candidate = "last";
    decided.reason = "no val split and no cross-validation: the last weights of stage 2's full "
                     "budget on every image";
  }
  if (run.data.val == nullptr) fit.patience = 0;  // nothing to stop on: the budget runs out

  if (decided.candidate == "stage 1 head") {
    // The head alone is better than fine-tuning it: no stage 2 on all images.
    logger()->info("stage 2 skipped: {}", decided.reason);
    StageOutcome none;
    const auto sources = make_sources(run.data, model, detail::loading_options(config));
    detail::StageNetwork stage(model.module(), config.fit);
    return detail::finish_run(run, stage.network(), none, std::move(stage1), sources, config,
                              decided);
  }
  // Stage 2 runs at the run's precision and memory format (stage 1 trains on cached features).
  detail::StageNetwork stage(model.module(), fit);
  // Stage 2: upper layers unfrozen, per-layer learning rates, from the stage-1 head.
  const auto groups = detail::fine_tuning_groups(model, head, config);
  for (const auto& group : groups)
    logger()->info("stage 2: group {} lr {:.3g} ({} tensors)", group.name, group.lr,
                   group.params.size());
  std::vector<std::string> frozen;
  for (const auto& layer : model.layers())
    if (layer.params > 0 && layer.trainable_params == 0) frozen.push_back(layer.name);
  if (!frozen.empty() && !config.lr_rules.empty()) {
    logger()->info("stage 2: {} layer(s) frozen by --lr-rules, {} .. {}", frozen.size(),
                   frozen.front(), frozen.back());
  } else if (!frozen.empty()) {
    logger()->info(
        "stage 2: {} layer(s) frozen, {} .. {} (below --unfreeze-from, or their lr would be under "
        "--lr-floor {:g} x the top layer's; --lr-floor 0 trains them)",
        frozen.size(), frozen.front(), frozen.back(), config.lr_floor);
  }
  auto optimizer = build_optimizer(config.fit.optimizer, groups, config.fit.decay_all);
  const auto sources = make_sources(run.data, model, loading);
  const auto outcome = stage.fit(*optimizer, fit, sources, setup);
  auto result = detail::finish_run(run, stage.network(), outcome, std::move(stage1), sources,
                                   config, decided);
  if (config.baseline != "scratch") return result;

  // After the export: the transfer model is written whatever happens to the baseline.
  throw_if_interrupted("the transfer run is complete and exported; the baseline had not started");
  const auto row = scratch_baseline(run, model, config);
  const auto exported = std::find_if(result.rows.begin(), result.rows.end(),
                                     [](const ResultRow& r) { return r.exported; });
  logger()->info(
      "baseline: from scratch {:.2f}% on {}, the exported transfer model {:.2f}% ({:+.2f} points)",
      100 * row.accuracy, result.split, 100 * exported->accuracy,
      100 * (exported->accuracy - row.accuracy));
  result.rows.push_back(row);
  if (train::is_main_process())
    detail::write_report(run.requested, config, result, outcome.fit.history);
  return result;
}

}  // namespace tlkit::pipeline
