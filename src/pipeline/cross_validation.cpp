// Stage 2's choices by k-fold cross-validation on small data (see cross_validation.h).
#include "cross_validation.h"

#include "calibration.h"
#include <tlkit/pipeline/cv_options.h>

#include <spdlog/fmt/fmt.h>

#include <tlkit/pipeline/select.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/optim/optimizer.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/json.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/random.h>
#include <tlkit/data/subset.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/flops.h>
#include <tlkit/train/monitor.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {
namespace {

// One optimizer step's cost per image on this model and data: its arithmetic (3 forward passes,
// counted from the layer shapes: the same on every machine and under any load) and, with
// `measure`, the seconds it takes here now (for the log only; two steps, seconds each for a large
// network on a CPU). The weights are not changed (the caller restores batch-norm statistics with
// the weights).
struct StepCost {
  double flops = 0, seconds = 0;
};
StepCost step_cost_per_image(train::Network& network, train::BatchSource& source,
                             bool measure) {
  StepCost cost;
  source.start_epoch(0);
  auto batch = source.next();
  if (batch) cost.flops = 3 * train::forward_flops_per_example(network, batch->inputs.slice(0, 0, 1));
  if (batch && measure) {
    network.train(true);
    const auto step = [&](std::int64_t count) {
      const auto start = std::chrono::steady_clock::now();
      auto loss = at::cross_entropy_loss(network.forward(batch->inputs.slice(0, 0, count)),
                                         batch->targets.slice(0, 0, count));
      loss.backward();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    // A few images warm up; a quick network is then measured on the whole batch, a slow one (a
    // large network on a CPU: seconds per image) on those few again.
    const auto few = std::min<std::int64_t>(4, batch->inputs.size(0));
    const double warm = step(few);
    const auto count = warm < 0.5 ? batch->inputs.size(0) : few;
    cost.seconds = step(count) / static_cast<double>(count);
  }
  for (auto& p : network.parameters())
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  network.train(false);
  return cost;
}

// Image-steps of one setting's folds: (K-1)/K of the images trained per fold and epoch, the rest
// validated once per epoch (twice with an EMA) at a third of a step's cost.
double steps_per_setting(double images, std::int64_t epochs, std::int64_t folds, bool ema) {
  return static_cast<double>(epochs) * images *
         ((static_cast<double>(folds) - 1.0) + (ema ? 2.0 : 1.0) / 3.0);
}

std::string flops_text(double f) {
  if (f < 1e9) return fmt::format("{:.0f} MFLOP", f / 1e6);
  return f < 1e12 ? fmt::format("{:.0f} GFLOP", f / 1e9) : fmt::format("{:.1f} TFLOP", f / 1e12);
}

std::string seconds_text(double s) {
  return s < 120 ? fmt::format("{:.0f} s", s) : fmt::format("{:.1f} min", s / 60);
}

}  // namespace

StageTwoPlan plan_stage_two(double flops_per_image_step, double images, std::int64_t epochs,
                            std::int64_t folds, bool ema, bool compare_augment, bool forced,
                            double budget_flops) {
  StageTwoPlan plan;
  plan.flops = flops_per_image_step * steps_per_setting(images, epochs, folds, ema);
  plan.run_folds = forced || plan.flops <= budget_flops;
  plan.without_augment = compare_augment && plan.run_folds && 2 * plan.flops <= budget_flops;
  return plan;
}

std::optional<StageTwoChoice> cross_validate_stage2(Started& run, const HeadResult& head,
                                                    const train::NamedTensors& pretrained,
                                                    const train::NamedTensors& after_stage1,
                                                    const RunConfig& config) {
  auto& data = run.data;
  auto& model = run.model;
  // Stage 1 cross-validates on cached features (cheap); each of stage 2's folds is a whole
  // fine-tuning, so by default it takes at most kStageTwoFolds of them (--cv-folds K: K).
  const auto folds = config.cv_folds >= 2 ? data.cv_folds
                                          : std::min<std::int64_t>(data.cv_folds, kStageTwoFolds);
  const auto epochs = config.fit.epochs;
  const auto labels = data.train->labels();
  const auto n = static_cast<double>(labels.size());
  const auto fold_of = data::stratified_folds(labels, folds, config.data.seed);

  // The cost, in the open: counted on this model and data before any fold runs. The decision
  // reads the arithmetic only (the same under any load); the seconds measured now are reported.
  const double budget = stage_two_budget_flops(config.fit.device.is_cuda());
  StepCost per_image;
  StageTwoPlan decided;
  {
    const auto sources = make_sources(data, model, loading_options(config));
    StageNetwork stage(model.module(), config.fit);
    model.unfreeze_all();
    per_image = step_cost_per_image(stage.network(), *sources.train, false);
    // With augmentation on (and not kept by --no-cv-augment), the folds also train without it.
    decided = plan_stage_two(per_image.flops, n, epochs, folds, config.fit.ema_decay > 0,
                             config.data.augment && config.cv_augment, config.cv_folds >= 2,
                             budget);
    // Seconds only where the folds run (to say how long they take): measuring costs two steps.
    if (decided.run_folds)
      per_image.seconds = step_cost_per_image(stage.network(), *sources.train, true).seconds;
    model.freeze_all();
  }
  const double one_setting = decided.flops;
  const double one_setting_seconds =
      per_image.seconds * steps_per_setting(n, epochs, folds, config.fit.ema_decay > 0);
  const double final_fit_seconds = per_image.seconds * n * static_cast<double>(epochs);
  const bool compare_augment = config.data.augment && config.cv_augment;
  // The decision is kept in the run folder: a --resume follows it whatever happens meanwhile.
  const auto plan_file = config.out / "cv" / "plan.json";
  bool run_folds = decided.run_folds;
  bool without_augment = decided.without_augment;
  if (config.resume && fs::exists(plan_file)) {
    try {
      const auto plan = Json::parse(read_file(plan_file));
      run_folds = plan.at("stage2_folds").as_bool();
      without_augment = plan.contains("without_augmentation") &&
                        plan.at("without_augmentation").as_bool();
    } catch (const Error& e) {
      logger()->info("cv/plan.json is unreadable ({}); deciding again", e.what());
    }
  } else if (train::is_main_process()) {
    Json plan = Json::object();
    plan["stage2_folds"] = run_folds;
    plan["without_augmentation"] = without_augment;
    plan["folds"] = folds;
    plan["epochs"] = epochs;
    plan["flops_per_image_step"] = per_image.flops;
    plan["estimated_flops"] = one_setting * (without_augment ? 2 : 1);
    plan["budget_flops"] = budget;
    if (per_image.seconds > 0) {  // measured where the folds run
      plan["estimated_seconds"] = one_setting_seconds * (without_augment ? 2 : 1);
      plan["final_fit_seconds"] = final_fit_seconds;
    }
    fs::create_directories(plan_file.parent_path());
    write_file_atomic(plan_file, plan.dump(2) + "\n");
  }
  if (!run_folds) {
    logger()->info(
        "stage 2 cross-validation skipped: {} folds x {} epochs would cost {} (over the {} "
        "budget: cv/plan.json); stage 2 runs its {} epochs on every image and the last weights "
        "are exported (--cv-folds {} runs the folds anyway)",
        folds, epochs, flops_text(one_setting), flops_text(budget), epochs, folds);
    train::ScriptNetwork whole(model.module());
    train::copy_state(whole, after_stage1);
    return std::nullopt;
  }
  const int settings = without_augment ? 2 : 1;
  logger()->info(
      "stage 2 cross-validation: {} extra fits ({} folds x {} epochs on about {} images each{}), "
      "{} in all (budget {}; about {} on this machine now); then the final fit on all {} images "
      "(about {})",
      folds * settings, folds, epochs, static_cast<std::int64_t>(n * (folds - 1) / folds),
      without_augment ? ", with and without augmentation" : "", flops_text(one_setting * settings),
      flops_text(budget), seconds_text(one_setting_seconds * settings),
      static_cast<std::int64_t>(n), seconds_text(final_fit_seconds));
  if (compare_augment && !without_augment)
    logger()->info(
        "stage 2 cross-validation: training without augmentation is not tried (twice the folds "
        "would cost {}, over the {} budget); the configured augmentation is kept",
        flops_text(2 * one_setting), flops_text(budget));

  // One fold of one setting: the stage-1 head refitted on the fold's images, then stage 2 with
  // the held images validated every epoch, as the final fit will run.
  // --calibrate temperature: each fold also keeps its held-out predictions of every option (the
  // stage-1 head, the last and EMA weights after each epoch) in RUN/cv/fold-<k>*/held_out.pt.
  const bool record = config.calibrate == "temperature";
  const auto run_fold = [&](std::int64_t f, bool augment, FoldPredictions& predictions) {
    const auto tag = std::to_string(f + 1) + (augment ? "" : "-no-augmentation");
    const auto dir = config.out / "cv" / ("fold-" + tag);
    const auto done = dir / "result.json";
    const auto name = "cv fold " + std::to_string(f + 1) + "/" + std::to_string(folds) +
                      (augment ? "" : " without augmentation");
    if (config.resume && fs::exists(done)) {
      try {
        auto result = fold_from_json(Json::parse(read_file(done)));
        if (record) predictions = FoldPredictions::load(dir / "held_out.pt");
        logger()->info("{}: done earlier (kept in {})", name, dir.string());
        return result;
      } catch (const Error& e) {
        logger()->info("{}: its result is unreadable ({}); running it again", name, e.what());
      }
    }
    throw_if_interrupted("cross-validation: finished folds are kept in cv/; --resume continues "
                         "with " + name);
    const auto start = std::chrono::steady_clock::now();
    std::vector<size_t> kept, held;
    std::vector<std::int64_t> kept_rows;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (fold_of[i] == f) {
        held.push_back(i);
      } else {
        kept.push_back(i);
        kept_rows.push_back(static_cast<std::int64_t>(i));
      }
    }
    train::ScriptNetwork whole(model.module());
    train::copy_state(whole, pretrained);
    refit_head(model, head, data, config, kept_rows);
    PreparedData fold;
    fold.splits = data.splits;
    fold.classes = data.classes;
    fold.train = std::make_shared<data::Subset>(data.train, kept,
                                                "cv fold " + std::to_string(f + 1) + " train");
    fold.val = std::make_shared<data::Subset>(data.train, held,
                                              "cv fold " + std::to_string(f + 1) + " held");
    auto loading = loading_options(config);
    loading.augment = loading.augment && augment;
    const auto sources = make_sources(fold, model, loading);
    // Both settings of a fold start from the same random state.
    torch::manual_seed(data::derive_seed(config.data.seed, 0xcf01d, static_cast<std::uint64_t>(f)));
    StageNetwork stage(model.module(), config.fit);
    FoldResult result;
    {
      stage.network().train(false);
      const auto e = train::evaluate(stage.network(), *sources.val, run.num_classes,
                                     config.fit.device);
      result.head_loss = e.loss;
      result.head_acc = train::monitored_accuracy(e, config.fit.monitor);
      if (record)
        std::tie(predictions.head, predictions.labels) =
            held_out_predictions(stage.network(), *sources.val, config.fit.device);
    }
    const auto groups = fine_tuning_groups(model, head.head, config);
    auto optimizer = build_optimizer(config.fit.optimizer, groups, config.fit.decay_all);
    auto fit = config.fit;
    fit.patience = 0;  // every epoch's score is kept: the length is chosen from the curves
    fit.val_every = 1;
    fit.snapshots = false;
    auto setup = main_stage(config, name, data.classes);
    setup.dir = dir;
    setup.checkpoints = false;
    setup.resume = false;
    setup.initial_loss_check = false;
    if (record) setup.extra_callback = record_predictions(*sources.val, config.fit.device, predictions);
    const auto outcome = stage.fit(*optimizer, fit, sources, setup);
    // The accuracy the monitor compares: balanced under --monitor val_balanced_acc.
    const std::string acc =
        config.fit.monitor == "val_balanced_acc" ? "val_balanced_acc" : "val_acc";
    for (const auto& m : outcome.fit.history) {
      result.loss.push_back(m.get("val_loss").value_or(std::nan("")));
      result.acc.push_back(m.get(acc).value_or(std::nan("")));
      result.ema_loss.push_back(m.get("ema_val_loss").value_or(std::nan("")));
      result.ema_acc.push_back(m.get("ema_" + acc).value_or(std::nan("")));
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    logger()->info("{}: stage-1 head {:.4f} / {:.2f}%, last {:.4f} / {:.2f}% ({})", name,
                   result.head_loss, 100 * result.head_acc,
                   result.loss.empty() ? std::nan("") : result.loss.back(),
                   result.acc.empty() ? std::nan("") : 100 * result.acc.back(),
                   seconds_text(result.seconds));
    // The predictions first: a fold with its result.json has them.
    if (record && train::is_main_process()) predictions.save(dir / "held_out.pt");
    if (train::is_main_process()) write_file_atomic(done, fold_to_json(result).dump(2) + "\n");
    return result;
  };

  const bool ema = config.fit.ema_decay > 0;
  std::vector<FoldResult> results;
  std::vector<FoldPredictions> predicted(static_cast<size_t>(folds)), predicted_plain(predicted);
  for (std::int64_t f = 0; f < folds; ++f)
    results.push_back(run_fold(f, true, predicted[static_cast<size_t>(f)]));
  auto chosen_options = stage_two_options(results, epochs, ema);
  bool augment = config.data.augment;
  std::string augment_report;
  if (without_augment) {
    std::vector<FoldResult> plain;
    for (std::int64_t f = 0; f < folds; ++f)
      plain.push_back(run_fold(f, false, predicted_plain[static_cast<size_t>(f)]));
    auto plain_options = stage_two_options(plain, epochs, ema);
    const auto a = best_stage_two_option(chosen_options, config.fit.monitor);
    const auto b = best_stage_two_option(plain_options, config.fit.monitor);
    const auto& sa = chosen_options.scores[a];
    const auto& sb = plain_options.scores[b];
    // Without augmentation only when its best option is better than augmentation's best.
    augment = !train::better(fold_means(sb), fold_means(sa), config.fit.monitor);
    augment_report = fmt::format(
        "Augmentation ({}): stage 2's best option {}, "
        "loss {:.4f}, accuracy {:.2f}%; without augmentation: {}, loss {:.4f}, accuracy {:.2f}%. "
        "Stage 2 trains {} augmentation (the better by {}).\n\n",
        describe_augmentation(config.data), sa.name, fold_mean(sa.loss),
        100 * fold_mean(sa.accuracy), sb.name, fold_mean(sb.loss), 100 * fold_mean(sb.accuracy),
        augment ? "with" : "without", config.fit.monitor);
    if (!augment) chosen_options = std::move(plain_options);
  }
  const auto& options = chosen_options.scores;
  const auto& what = chosen_options.what;

  std::string why;
  const auto chosen = choose_within_one_se(options, config.fit.monitor, &why);
  StageTwoChoice choice;
  choice.candidate = what[chosen].first;
  choice.epochs = what[chosen].second;
  choice.layout = epochs;
  choice.augment = augment;
  choice.reason = options[chosen].name +
                  (augment || what[chosen].second == 0 ? "" : " without augmentation") + " by " +
                  std::to_string(folds) + "-fold cross-validation: " + why;

  std::string md = "## Choices by " + std::to_string(folds) + "-fold cross-validation\n\n" +
                   "On " + std::to_string(labels.size()) + " labelled images (" +
                   data.decided_by + "); each fold refits the stage-1 head (" + head.head +
                   (head.l2 > 0 ? ", L2 " + std::to_string(head.l2) : std::string()) +
                   ") and runs stage 2 on the other folds' images. Mean +- std over the folds; " +
                   "the curves are in cv/fold-<k>*/metrics.csv.\n\n" + augment_report;
  md += options_table(chosen_options, chosen, epochs, config.fit.monitor);
  if (!head.by_fold.empty()) {
    md += fmt::format(
        "\nStage 1 (the head's depth and L2 strength): {}, estimate loss {:.4f}, accuracy "
        "{:.2f}% ({}).\n",
        head.head, head.estimate.loss, 100 * head.estimate.accuracy, head.estimate_name);
  }
  md += "\nChosen: " + choice.reason + ".\n";
  choice.report = md;
  logger()->info("cross-validation chose: {}", choice.reason);
  if (record) {
    // Calibration data: the chosen option's predictions on each fold's held-out images, by
    // weights that never trained on them (scikit-learn's CalibratedClassifierCV, ensemble=False).
    std::vector<at::Tensor> log_p, y;
    for (const auto& fold : augment ? predicted : predicted_plain) {
      const auto rows = fold.of(choice.candidate, choice.epochs);
      if (!rows.defined()) break;
      log_p.push_back(rows);
      y.push_back(fold.labels);
    }
    if (log_p.size() == static_cast<size_t>(folds)) {
      choice.held_log_probabilities = at::cat(log_p);
      choice.held_labels = at::cat(y);
      choice.held_out = fmt::format(
          "the {} folds' held-out predictions of the chosen option ({}{}), each by weights "
          "trained on the other folds",
          folds, options[chosen].name, augment || choice.epochs == 0 ? "" : ", without augmentation");
    } else {
      choice.held_out = "the stage-2 folds' held-out predictions of the chosen option were not "
                        "recorded (folds run before --calibrate temperature, or stopped early)";
    }
  }
  train::ScriptNetwork whole(model.module());
  train::copy_state(whole, after_stage1);
  model.freeze_all();
  return choice;
}

}  // namespace tlkit::pipeline::detail
