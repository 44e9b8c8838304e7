// The two-stage transfer pipeline: stage 1 (a new head on cached features), stage 2 (fine-tuning).
#include <tlkit/core/interrupt.h>
#include <tlkit/pipeline/transfer.h>

#include <torch/csrc/jit/api/module.h>
#include <torch/optim/optimizer.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/train/precision.h>

#include "run.h"
#include "stage1.h"

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

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

  // Stage 1: the new head, the classification layer or the layers from --head-from (auto: the
  // depth with the best estimate).
  const auto head_result = detail::stage1(model, run.data, config);
  const auto& head = head_result.head;
  detail::Earlier stage1;
  stage1.rows.push_back(head_result.row);
  logger()->info("stage 1: {:.2f}% on {}", 100 * stage1.rows.back().accuracy, run.data.eval_split);
  train::ScriptNetwork script(model.module());
  stage1.candidates.push_back({"stage 1 head", train::clone_state(script)});
  // Stage 2 runs at the run's precision and memory format (stage 1 trains on cached features).
  if (config.fit.channels_last) train::set_channels_last(script, true);
  train::PrecisionNetwork network(script, train::parse_precision(config.fit.precision),
                                  config.fit.channels_last, config.fit.device);

  // A signal during stage 1's last epoch: stop before stage 2 starts (nothing of it to keep).
  throw_if_interrupted("stage 1 finished; stage 2 had not started (the cached features are kept)");

  // Stage 2: upper layers unfrozen, per-layer learning rates, from the stage-1 head.
  const auto groups = fine_tuning_groups(model, head, config);
  for (const auto& group : groups)
    logger()->info("stage 2: group {} lr {:.3g} ({} tensors)", group.name, group.lr,
                   group.params.size());
  auto optimizer = build_optimizer(config.fit.optimizer, groups);
  network.set_dropout(config.fit.overfit_batches == 0);
  const auto sources = make_sources(run.data, model, detail::loading_options(config));
  auto setup = detail::main_stage(config, "stage 2 (fine-tune)", run.data.classes);
  setup.initial_loss_check = false;  // the head is trained already: the loss starts below ln(C)
  const auto outcome =
      fit_stage(network, *optimizer, config.fit, *sources.train, sources.val.get(), setup);
  network.set_dropout(true);
  // The exported weights are plain contiguous tensors, whatever the layout trained in.
  if (config.fit.channels_last) train::set_channels_last(script, false);
  return detail::finish_run(run, network, outcome, std::move(stage1), sources, config);
}

}  // namespace tlkit::pipeline
