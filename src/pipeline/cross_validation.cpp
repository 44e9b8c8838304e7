// Stage 2's choices by k-fold cross-validation on small data (see cross_validation.h).
#include "cross_validation.h"

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
#include <tlkit/train/monitor.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {
namespace {

// What one fold leaves behind: the stage-1 head's score on the held images, and per epoch the
// held images' loss and accuracy of the last weights and of their EMA.
struct FoldResult {
  double head_loss = 0, head_acc = 0;
  std::vector<double> loss, acc, ema_loss, ema_acc;
  double seconds = 0;
};

Json to_json(const FoldResult& r) {
  Json j = Json::object();
  j["head_loss"] = r.head_loss;
  j["head_acc"] = r.head_acc;
  j["val_loss"] = Json(r.loss);
  j["val_acc"] = Json(r.acc);
  j["ema_val_loss"] = Json(r.ema_loss);
  j["ema_val_acc"] = Json(r.ema_acc);
  j["seconds"] = r.seconds;
  return j;
}

FoldResult fold_from_json(const Json& j) {
  FoldResult r;
  r.head_loss = j.at("head_loss").as_double();
  r.head_acc = j.at("head_acc").as_double();
  r.loss = j.at("val_loss").as_double_list();
  r.acc = j.at("val_acc").as_double_list();
  r.ema_loss = j.at("ema_val_loss").as_double_list();
  r.ema_acc = j.at("ema_val_acc").as_double_list();
  r.seconds = j.at("seconds").as_double();
  return r;
}

// Seconds one optimizer step's forward and backward take per image on this model and data; the
// weights are not changed (the caller restores batch-norm statistics with the weights).
double seconds_per_image(train::Network& network, train::BatchSource& source) {
  network.train(true);
  source.start_epoch(0);
  auto batch = source.next();
  double per_image = 0;
  if (batch) {
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
    per_image = step(count) / static_cast<double>(count);
  }
  for (auto& p : network.parameters())
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  network.train(false);
  return per_image;
}

std::string seconds_text(double s) {
  char text[32];
  if (s < 120)
    std::snprintf(text, sizeof(text), "%.0f s", s);
  else
    std::snprintf(text, sizeof(text), "%.1f min", s / 60);
  return text;
}

}  // namespace

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

  // The cost, in the open: measured on this model and data before any fold runs.
  double per_image = 0;
  {
    const auto sources = make_sources(data, model, loading_options(config));
    StageNetwork stage(model.module(), config.fit);
    model.unfreeze_all();
    per_image = seconds_per_image(stage.network(), *sources.train);
    model.freeze_all();
  }
  const double final_fit = per_image * n * static_cast<double>(epochs);
  // Each fold trains on (K-1)/K of the images and validates the rest twice per epoch (the last
  // weights and the EMA; a forward pass costs about a third of a training step).
  const double per_fold =
      per_image * static_cast<double>(epochs) * n *
      ((folds - 1.0) / folds + (config.fit.ema_decay > 0 ? 2.0 : 1.0) / (3.0 * folds));
  const double total = per_fold * static_cast<double>(folds);
  const bool forced = config.cv_folds >= 2;
  // The decision is kept in the run folder: a --resume follows it whatever the machine's speed.
  const auto plan_file = config.out / "cv" / "plan.json";
  bool run_folds = forced || total <= kStageTwoBudgetSeconds;
  if (config.resume && fs::exists(plan_file)) {
    try {
      run_folds = Json::parse(read_file(plan_file)).at("stage2_folds").as_bool();
    } catch (const Error& e) {
      logger()->info("cv/plan.json is unreadable ({}); deciding again", e.what());
    }
  } else if (train::is_main_process()) {
    Json plan = Json::object();
    plan["stage2_folds"] = run_folds;
    plan["folds"] = folds;
    plan["epochs"] = epochs;
    plan["estimated_seconds"] = total;
    plan["final_fit_seconds"] = final_fit;
    fs::create_directories(plan_file.parent_path());
    write_file_atomic(plan_file, plan.dump(2) + "\n");
  }
  if (!run_folds) {
    logger()->info(
        "stage 2 cross-validation skipped: {} folds x {} epochs would take about {} (over {}; "
        "the final fit on all images: about {}); stage 2 runs its {} epochs on every image and "
        "the last weights are exported (--cv-folds {} runs the folds anyway)",
        folds, epochs, seconds_text(total), seconds_text(kStageTwoBudgetSeconds),
        seconds_text(final_fit), epochs, folds);
    train::ScriptNetwork whole(model.module());
    train::copy_state(whole, after_stage1);
    return std::nullopt;
  }
  logger()->info(
      "stage 2 cross-validation: {} extra fits ({} folds x {} epochs on about {} images each), "
      "about {} in all; then the final fit on all {} images (about {})",
      folds, folds, epochs, static_cast<std::int64_t>(n * (folds - 1) / folds),
      seconds_text(total), static_cast<std::int64_t>(n), seconds_text(final_fit));

  std::vector<FoldResult> results;
  for (std::int64_t f = 0; f < folds; ++f) {
    const auto dir = config.out / "cv" / ("fold-" + std::to_string(f + 1));
    const auto done = dir / "result.json";
    if (config.resume && fs::exists(done)) {
      try {
        results.push_back(fold_from_json(Json::parse(read_file(done))));
        logger()->info("cv fold {}/{}: done earlier (kept in {})", f + 1, folds, dir.string());
        continue;
      } catch (const Error& e) {
        logger()->info("cv fold {}/{}: its result is unreadable ({}); running it again", f + 1,
                       folds, e.what());
      }
    }
    throw_if_interrupted("cross-validation: folds 1-" + std::to_string(f) +
                         " are kept; --resume continues with fold " + std::to_string(f + 1));
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
    // The fold's run, as the final fit will be: the stage-1 head on its images, then stage 2.
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
    const auto sources = make_sources(fold, model, loading_options(config));
    torch::manual_seed(data::derive_seed(config.data.seed, 0xcf01d, static_cast<std::uint64_t>(f)));
    StageNetwork stage(model.module(), config.fit);
    FoldResult result;
    {
      stage.network().train(false);
      const auto e = train::evaluate(stage.network(), *sources.val, run.num_classes,
                                     config.fit.device);
      result.head_loss = e.loss;
      result.head_acc = e.accuracy;
    }
    const auto groups = fine_tuning_groups(model, head.head, config);
    auto optimizer = build_optimizer(config.fit.optimizer, groups);
    auto fit = config.fit;
    fit.patience = 0;  // every epoch's score is kept: the length is chosen from the curves
    fit.val_every = 1;
    fit.snapshots = false;
    auto setup = main_stage(config, "cv fold " + std::to_string(f + 1) + "/" +
                                        std::to_string(folds), data.classes);
    setup.dir = dir;
    setup.checkpoints = false;
    setup.resume = false;
    setup.initial_loss_check = false;
    const auto outcome = stage.fit(*optimizer, fit, sources, setup);
    for (const auto& m : outcome.fit.history) {
      result.loss.push_back(m.get("val_loss").value_or(std::nan("")));
      result.acc.push_back(m.get("val_acc").value_or(std::nan("")));
      result.ema_loss.push_back(m.get("ema_val_loss").value_or(std::nan("")));
      result.ema_acc.push_back(m.get("ema_val_acc").value_or(std::nan("")));
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    logger()->info("cv fold {}/{}: stage-1 head {:.4f} / {:.2f}%, last {:.4f} / {:.2f}% ({})",
                   f + 1, folds, result.head_loss, 100 * result.head_acc,
                   result.loss.empty() ? std::nan("") : result.loss.back(),
                   result.acc.empty() ? std::nan("") : 100 * result.acc.back(),
                   seconds_text(result.seconds));
    if (train::is_main_process()) write_file_atomic(done, to_json(result).dump(2) + "\n");
    results.push_back(std::move(result));
  }

  // The options, in order of preference: the full length (what the final fit runs by default),
  // its EMA, shorter lengths (longest first), the stage-1 head alone.
  std::vector<FoldScores> options;
  std::vector<std::pair<std::string, std::int64_t>> what;  // (candidate, epochs)
  const auto add = [&](const std::string& candidate, std::int64_t e, const std::string& name,
                       auto loss_of, auto acc_of) {
    FoldScores o{name, {}, {}};
    for (const auto& r : results) {
      o.loss.push_back(loss_of(r));
      o.accuracy.push_back(acc_of(r));
    }
    options.push_back(std::move(o));
    what.emplace_back(candidate, e);
  };
  const bool ema = config.fit.ema_decay > 0;
  const auto at = [](const std::vector<double>& v, std::int64_t e) {
    return e - 1 < static_cast<std::int64_t>(v.size()) ? v[static_cast<size_t>(e - 1)]
                                                       : std::nan("");
  };
  for (std::int64_t e = epochs; e >= 1; --e) {
    const auto suffix = e == epochs ? " (" + std::to_string(e) + " epochs)"
                                    : " after " + std::to_string(e) + " epoch" +
                                          (e == 1 ? "" : "s");
    add("last", e, "stage 2 last" + suffix, [&](const FoldResult& r) { return at(r.loss, e); },
        [&](const FoldResult& r) { return at(r.acc, e); });
    if (ema)
      add("EMA", e, "stage 2 EMA" + suffix, [&](const FoldResult& r) { return at(r.ema_loss, e); },
          [&](const FoldResult& r) { return at(r.ema_acc, e); });
  }
  add("stage 1 head", 0, "stage 1 head alone", [](const FoldResult& r) { return r.head_loss; },
      [](const FoldResult& r) { return r.head_acc; });

  std::string why;
  const auto chosen = choose_within_one_se(options, config.fit.monitor, &why);
  StageTwoChoice choice;
  choice.candidate = what[chosen].first;
  choice.epochs = what[chosen].second;
  choice.layout = epochs;
  choice.reason = options[chosen].name + " by " + std::to_string(folds) +
                  "-fold cross-validation: " + why;

  // The report: the main options and the best of each kind over the lengths.
  std::vector<size_t> shown;
  for (size_t i = 0; i < options.size(); ++i) {
    const bool main = what[i].second == epochs || what[i].second == 0;
    if (main || i == chosen) shown.push_back(i);
  }
  for (const auto& kind : {"last", "EMA"}) {
    size_t best = options.size();
    for (size_t i = 0; i < options.size(); ++i) {
      if (what[i].first != kind) continue;
      train::Evaluation a;
      a.loss = fold_mean(options[i].loss);
      a.accuracy = fold_mean(options[i].accuracy);
      if (best == options.size()) {
        best = i;
        continue;
      }
      train::Evaluation b;
      b.loss = fold_mean(options[best].loss);
      b.accuracy = fold_mean(options[best].accuracy);
      if (train::better(a, b, config.fit.monitor)) best = i;
    }
    if (best < options.size() &&
        std::find(shown.begin(), shown.end(), best) == shown.end())
      shown.push_back(best);
  }
  std::string md = "## Choices by " + std::to_string(folds) + "-fold cross-validation\n\n" +
                   "On " + std::to_string(labels.size()) + " labelled images (" +
                   data.decided_by + "); each fold refits the stage-1 head (" + head.head +
                   (head.l2 > 0 ? ", L2 " + std::to_string(head.l2) : std::string()) +
                   ") and runs stage 2 on the other folds' images. Mean +- std over the folds; " +
                   "the curves are in cv/fold-<k>/metrics.csv.\n\n" +
                   "| option | held-out loss | held-out accuracy |\n|---|---:|---:|\n";
  for (const auto i : shown) {
    char line[256];
    std::snprintf(line, sizeof(line), "| %s%s | %.4f +- %.4f | %.2f%% +- %.2f |\n",
                  options[i].name.c_str(), i == chosen ? " (chosen)" : "", fold_mean(options[i].loss),
                  fold_std(options[i].loss), 100 * fold_mean(options[i].accuracy),
                  100 * fold_std(options[i].accuracy));
    md += line;
  }
  if (!head.by_fold.empty()) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "\nStage 1 (the head's depth and L2 strength): %s, estimate loss %.4f, "
                  "accuracy %.2f%% (%s).\n",
                  head.head.c_str(), head.estimate.loss, 100 * head.estimate.accuracy,
                  head.estimate_name.c_str());
    md += line;
  }
  md += "\nChosen: " + choice.reason + ".\n";
  choice.report = md;
  logger()->info("cross-validation chose: {}", choice.reason);
  train::ScriptNetwork whole(model.module());
  train::copy_state(whole, after_stage1);
  model.freeze_all();
  return choice;
}

}  // namespace tlkit::pipeline::detail
