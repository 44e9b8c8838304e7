// Choosing the exported weights on validation (see select.h).
#include <tlkit/pipeline/select.h>
#include <tlkit/train/batch_norm_stats.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>
#include <tlkit/model/script_checks.h>
#include <tlkit/train/monitor.h>

namespace tlkit::pipeline {
double fold_mean(const std::vector<double>& values) {
  double sum = 0;
  for (const double x : values) sum += x;
  return values.empty() ? std::nan("") : sum / static_cast<double>(values.size());
}

double fold_std(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double m = fold_mean(values);
  double sum = 0;
  for (const double x : values) sum += (x - m) * (x - m);
  return std::sqrt(sum / static_cast<double>(values.size() - 1));
}

size_t choose_within_one_se(const std::vector<FoldScores>& options, const std::string& monitor,
                            std::string* why) {
  TLKIT_CHECK(!options.empty(), "nothing to choose from");
  const bool by_accuracy = train::maximizes(monitor, train::Mode::kAuto);
  const auto summary = [&](const FoldScores& o) {
    train::Evaluation e;
    e.loss = fold_mean(o.loss);
    e.accuracy = fold_mean(o.accuracy);
    return e;
  };
  size_t best = 0;
  for (size_t i = 1; i < options.size(); ++i)
    if (train::better(summary(options[i]), summary(options[best]), monitor)) best = i;
  const auto& b = options[best];
  const auto& values = by_accuracy ? b.accuracy : b.loss;
  const double se = fold_std(values) / std::sqrt(static_cast<double>(std::max<size_t>(1, values.size())));
  const double best_mean = fold_mean(values);
  for (size_t i = 0; i < options.size(); ++i) {
    const double m = fold_mean(by_accuracy ? options[i].accuracy : options[i].loss);
    if (!std::isfinite(m)) continue;
    // Within one standard error of the best: not worse by more than the folds' noise.
    if (train::improves(best_mean, m, by_accuracy, se)) continue;
    if (why) {
      char text[256];
      if (i == best)
        std::snprintf(text, sizeof(text), "the best mean %s over the folds (%.4f)",
                      monitor.c_str(), best_mean);
      else
        std::snprintf(text, sizeof(text),
                      "mean %s %.4f, within one standard error (%.4f) of the best (%s, %.4f), "
                      "and preferred",
                      monitor.c_str(), m, se, b.name.c_str(), best_mean);
      *why = text;
    }
    return i;
  }
  if (why) *why = "the best mean " + monitor + " over the folds";
  return best;
}


train::NamedTensors average_weights(const std::vector<train::NamedTensors>& members) {
  TLKIT_CHECK(!members.empty(), "nothing to average");
  train::NamedTensors average;
  for (size_t i = 0; i < members.front().size(); ++i) {
    const auto& [name, first] = members.front()[i];
    if (!first.is_floating_point()) {
      average.emplace_back(name, members.back()[i].second.clone());  // counters: the last member's
      continue;
    }
    auto sum = at::zeros_like(first, first.options().dtype(at::kDouble));
    for (const auto& member : members) {
      TLKIT_CHECK(member.size() == members.front().size() && member[i].first == name,
                  "the snapshots hold different tensors; they cannot be averaged");
      sum.add_(member[i].second.to(at::kDouble));
    }
    average.emplace_back(name, sum.div_(static_cast<double>(members.size())).to(first.dtype()));
  }
  return average;
}

std::vector<Candidate> stage_candidates(const StageOutcome& outcome) {
  std::vector<Candidate> candidates{{"last", outcome.last}};
  if (!outcome.best.empty())
    candidates.push_back({"best (epoch " + std::to_string(outcome.best_epoch) + ")", outcome.best});
  if (!outcome.ema.empty()) candidates.push_back({"EMA", outcome.ema});
  if (outcome.snapshots.size() >= 2) {
    candidates.push_back({"snapshot average (" + std::to_string(outcome.snapshots.size()) + ")",
                          average_weights(outcome.snapshots)});
  }
  return candidates;
}

std::vector<Candidate> stage_candidates(const StageOutcome& outcome, train::Network& network,
                                        train::BatchSource& train, const c10::Device& device) {
  auto candidates = stage_candidates(outcome);
  if (outcome.snapshots.size() < 2) return candidates;
  auto& average = candidates.back();  // the snapshot average comes last
  train::copy_state(network, average.weights);
  const auto layers = train::recompute_batch_norm(network, train, device);
  if (layers == 0) return candidates;
  average.weights = train::clone_state(network);
  logger()->info("{}: the batch-norm statistics of {} layers recomputed over the training images",
                 average.name, layers);
  return candidates;
}

Selection select_on_validation(train::Network& network, const std::vector<Candidate>& candidates,
                               train::BatchSource& val, const std::string& monitor,
                               std::int64_t num_classes, const c10::Device& device) {
  TLKIT_CHECK(!candidates.empty(), "nothing to select from");
  TLKIT_CHECK(monitor == "val_loss" || monitor == "val_acc" || monitor == "val_balanced_acc",
              "unknown monitor '", monitor, "'");
  Selection selection;
  for (const auto& candidate : candidates) {
    train::copy_state(network, candidate.weights);
    selection.validation.push_back(train::evaluate(network, val, num_classes, device));
  }
  // A candidate with a NaN/Inf weight or validation metric is never chosen (nor exported).
  std::vector<std::string> broken(candidates.size());
  std::optional<size_t> best;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& v = selection.validation[i];
    const auto tensor = model::first_nonfinite(candidates[i].weights);
    if (!tensor.empty())
      broken[i] = "NaN/Inf in its weights (" + tensor + ")";
    else if (!std::isfinite(v.loss) || !std::isfinite(v.accuracy))
      broken[i] = "a non-finite validation loss";
    else if (!best || train::better(v, selection.validation[*best], monitor))
      best = i;
  }
  if (!best) {
    std::vector<std::string> why;
    for (size_t i = 0; i < candidates.size(); ++i)
      why.push_back(candidates[i].name + ": " + broken[i]);
    fail("no model to export: every candidate is broken (", join(why, "; "),
         "); the training diverged: lower the learning rate (or try 'tlkit lr-find')");
  }
  selection.chosen = *best;
  const auto& chosen = selection.validation[selection.chosen];
  char text[160];
  std::snprintf(text, sizeof(text), "%s %s on validation (%.4f) of %zu candidates",
                monitor == "val_loss" ? "lowest" : "highest", monitor.c_str(),
                monitor == "val_loss" ? chosen.loss : train::monitored_accuracy(chosen, monitor),
                candidates.size());
  selection.reason = text;
  for (size_t i = 0; i < candidates.size(); ++i)
    logger()->info("candidate {}: val loss {:.4f}, val acc {:.2f}%{}", candidates[i].name,
                   selection.validation[i].loss, 100 * selection.validation[i].accuracy,
                   i == selection.chosen ? "  <- exported"
                   : broken[i].empty()   ? ""
                                         : "  (never exported: " + broken[i] + ")");
  train::copy_state(network, candidates[selection.chosen].weights);
  return selection;
}

}  // namespace tlkit::pipeline
