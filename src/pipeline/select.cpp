// Choosing the exported weights on validation (see select.h).
#include <tlkit/pipeline/select.h>

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

Selection select_on_validation(train::Network& network, const std::vector<Candidate>& candidates,
                               train::BatchSource& val, const std::string& monitor,
                               std::int64_t num_classes, const c10::Device& device) {
  TLKIT_CHECK(!candidates.empty(), "nothing to select from");
  TLKIT_CHECK(monitor == "val_loss" || monitor == "val_acc", "unknown monitor '", monitor, "'");
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
                monitor == "val_acc" ? "highest" : "lowest", monitor.c_str(),
                monitor == "val_acc" ? chosen.accuracy : chosen.loss, candidates.size());
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
