// Stage 2's cross-validation options (see cv_options.h).
#include <tlkit/pipeline/cv_options.h>

#include <algorithm>
#include <cmath>

#include <spdlog/fmt/fmt.h>

#include <tlkit/train/monitor.h>

namespace tlkit::pipeline::detail {
train::Evaluation fold_means(const FoldScores& scores) {
  train::Evaluation e;
  e.loss = fold_mean(scores.loss);
  e.accuracy = fold_mean(scores.accuracy);
  return e;
}

Json fold_to_json(const FoldResult& r) {
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

StageTwoOptions stage_two_options(const std::vector<FoldResult>& folds, std::int64_t epochs,
                                  bool ema) {
  StageTwoOptions o;
  const auto add = [&](const std::string& candidate, std::int64_t e, const std::string& name,
                       auto loss_of, auto acc_of) {
    FoldScores s{name, {}, {}};
    for (const auto& r : folds) {
      s.loss.push_back(loss_of(r));
      s.accuracy.push_back(acc_of(r));
    }
    o.scores.push_back(std::move(s));
    o.what.emplace_back(candidate, e);
  };
  const auto at = [](const std::vector<double>& v, std::int64_t e) {
    return e - 1 < static_cast<std::int64_t>(v.size()) ? v[static_cast<size_t>(e - 1)]
                                                       : std::nan("");
  };
  for (std::int64_t e = epochs; e >= 1; --e) {
    const auto suffix = e == epochs ? fmt::format(" ({} epochs)", e)
                                    : fmt::format(" after {} epoch{}", e, e == 1 ? "" : "s");
    add("last", e, "stage 2 last" + suffix, [&](const FoldResult& r) { return at(r.loss, e); },
        [&](const FoldResult& r) { return at(r.acc, e); });
    if (ema)
      add("EMA", e, "stage 2 EMA" + suffix, [&](const FoldResult& r) { return at(r.ema_loss, e); },
          [&](const FoldResult& r) { return at(r.ema_acc, e); });
  }
  add("stage 1 head", 0, "stage 1 head alone", [](const FoldResult& r) { return r.head_loss; },
      [](const FoldResult& r) { return r.head_acc; });
  return o;
}

size_t best_stage_two_option(const StageTwoOptions& options, const std::string& monitor) {
  size_t best = options.scores.size();
  for (size_t i = 0; i < options.scores.size(); ++i) {
    if (options.what[i].second == 0) continue;  // the stage-1 head alone
    if (best == options.scores.size() ||
        train::better(fold_means(options.scores[i]), fold_means(options.scores[best]), monitor))
      best = i;
  }
  return best == options.scores.size() ? 0 : best;
}

std::string options_table(const StageTwoOptions& options, size_t chosen, std::int64_t epochs,
                          const std::string& monitor) {
  const auto& scores = options.scores;
  const auto& what = options.what;
  std::vector<size_t> shown;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool main = what[i].second == epochs || what[i].second == 0;
    if (main || i == chosen) shown.push_back(i);
  }
  for (const auto& kind : {"last", "EMA"}) {
    size_t best = scores.size();
    for (size_t i = 0; i < scores.size(); ++i) {
      if (what[i].first != kind) continue;
      if (best == scores.size() || train::better(fold_means(scores[i]), fold_means(scores[best]), monitor))
        best = i;
    }
    if (best < scores.size() && std::find(shown.begin(), shown.end(), best) == shown.end())
      shown.push_back(best);
  }
  std::string md = "| option | held-out loss | held-out accuracy |\n|---|---:|---:|\n";
  for (const auto i : shown)
    md += fmt::format("| {}{} | {:.4f} +- {:.4f} | {:.2f}% +- {:.2f} |\n", scores[i].name,
                      i == chosen ? " (chosen)" : "", fold_mean(scores[i].loss),
                      fold_std(scores[i].loss), 100 * fold_mean(scores[i].accuracy),
                      100 * fold_std(scores[i].accuracy));
  return md;
}

}  // namespace tlkit::pipeline::detail
