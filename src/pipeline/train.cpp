// Full training: every layer trainable, from scratch (reinitialize) or from the file's weights.
#include <tlkit/pipeline/transfer.h>

#include <torch/optim/optimizer.h>

#include <tlkit/core/error.h>
#include <tlkit/model/param_groups.h>

#include "run.h"

namespace tlkit::pipeline {

RunResult train(const RunConfig& requested) {
  TLKIT_CHECK(requested.command == "train", "train() got a '", requested.command, "' config");
  auto run = detail::start_run(requested);
  const auto config = detail::resolve_budgets(requested, run);
  auto& model = run.model;
  if (config.reinitialize) model.reinitialize();
  if (model.num_classes() != run.num_classes || model.class_names() != run.data.classes)
    model.replace_head(run.num_classes, run.data.classes);
  model.unfreeze_all();
  auto optimizer = build_optimizer(config.fit.optimizer,
                                   model::single_param_group(model, base_lr(config.fit.optimizer)),
                                   config.fit.decay_all);
  detail::StageNetwork stage(model.module(), config.fit);
  const auto sources = make_sources(run.data, model, detail::loading_options(config));
  auto setup = detail::main_stage(config, "train", run.data.classes);
  setup.initial_loss_check = config.reinitialize || model.metadata().random_init();
  const auto outcome = stage.fit(*optimizer, config.fit, sources, setup);
  return detail::finish_run(run, stage.network(), outcome, {}, sources, config);
}

}  // namespace tlkit::pipeline
