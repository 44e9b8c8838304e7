#pragma once
// An Evaluation written out: a JSON object with flat keys (`accuracy`, `top5`, `macro_f1`,
// `balanced_accuracy`, `nll`, `ece`, `per_class`, ...), text for the terminal and Markdown for a
// run's results.md. Class names index the per-class rows (a missing name is the class index).

#include <string>
#include <vector>

#include <tlkit/core/json.h>
#include <tlkit/train/metrics.h>

namespace tlkit::train {

// {"examples", "accuracy", "top<k>", "top_k", "macro_f1", "balanced_accuracy", "nll", "ece",
//  "per_class": [{"name", "precision", "recall", "f1", "support"}, ...], "confusion": [[...]]}
Json evaluation_json(const Evaluation& evaluation, const std::vector<std::string>& class_names);

// "top-5 98.00%  macro F1 0.9712  balanced accuracy 97.50%  NLL 0.0912  ECE 0.0231"
std::string format_summary(const Evaluation& evaluation);

// Precision, recall, F1 and support per class, one line each, aligned.
std::string format_per_class(const Evaluation& evaluation,
                             const std::vector<std::string>& class_names);

// The summary metrics as a Markdown list and the per-class scores as a Markdown table.
std::string format_markdown(const Evaluation& evaluation,
                            const std::vector<std::string>& class_names);

}  // namespace tlkit::train
