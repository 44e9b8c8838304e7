// Choosing the exported weights on validation (see select.h).
#include <tlkit/pipeline/select.h>

#include <cstdio>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace tlkit::pipeline {

std::vector<Candidate> stage_candidates(const StageOutcome& outcome) {
  std::vector<Candidate> candidates{{"last", outcome.last}};
  if (!outcome.best.empty())
    candidates.push_back({"best (epoch " + std::to_string(outcome.best_epoch) + ")", outcome.best});
  if (!outcome.ema.empty()) candidates.push_back({"EMA", outcome.ema});
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
  const auto better = [&](const train::Evaluation& a, const train::Evaluation& b) {
    if (monitor == "val_acc" && a.accuracy != b.accuracy) return a.accuracy > b.accuracy;
    return a.loss < b.loss;
  };
  for (size_t i = 1; i < candidates.size(); ++i)
    if (better(selection.validation[i], selection.validation[selection.chosen]))
      selection.chosen = i;
  const auto& chosen = selection.validation[selection.chosen];
  char text[160];
  std::snprintf(text, sizeof(text), "%s %s on validation (%.4f) of %zu candidates",
                monitor == "val_acc" ? "highest" : "lowest", monitor.c_str(),
                monitor == "val_acc" ? chosen.accuracy : chosen.loss, candidates.size());
  selection.reason = text;
  for (size_t i = 0; i < candidates.size(); ++i)
    logger()->info("candidate {}: val loss {:.4f}, val acc {:.2f}%{}", candidates[i].name,
                   selection.validation[i].loss, 100 * selection.validation[i].accuracy,
                   i == selection.chosen ? "  <- exported" : "");
  train::copy_state(network, candidates[selection.chosen].weights);
  return selection;
}

}  // namespace tlkit::pipeline
