#pragma once
// Classification metrics: loss, accuracy, per-class accuracy, confusion matrix; evaluation of one
// network or of an ensemble whose members' softmax outputs are averaged.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <tlkit/train/batch_source.h>
#include <tlkit/train/network.h>

namespace tlkit::train {

// An ordered list of named numbers (one epoch's metrics, a results row).
class Metrics {
 public:
  void set(const std::string& name, double value);
  std::optional<double> get(const std::string& name) const;
  double at(const std::string& name) const;  // throws tlkit::Error naming the known metrics
  const std::vector<std::pair<std::string, double>>& items() const { return items_; }
  void clear() { items_.clear(); }

 private:
  std::vector<std::pair<std::string, double>> items_;
};

struct Evaluation {
  double loss = 0;      // mean cross-entropy (of the averaged probabilities for an ensemble)
  double accuracy = 0;  // top-1
  std::int64_t examples = 0;
  at::Tensor confusion;  // [C, C] int64, rows = true class, columns = predicted
  std::vector<double> per_class_accuracy() const;
};

// Adds a batch's (predicted probabilities or logits, targets) to running totals.
class EvaluationAccumulator {
 public:
  explicit EvaluationAccumulator(std::int64_t num_classes);
  void add_log_probabilities(const at::Tensor& log_probabilities, const at::Tensor& targets);
  Evaluation result() const;
  // Adds every rank's totals (data parallelism: each rank evaluated its shard of the data).
  void reduce_over_ranks();

 private:
  double loss_sum_ = 0;
  std::int64_t correct_ = 0, examples_ = 0;
  at::Tensor confusion_;
};

// Evaluates `network` in eval mode without gradients over one pass of `source`.
Evaluation evaluate(Network& network, BatchSource& source, std::int64_t num_classes,
                    const c10::Device& device = c10::Device(c10::kCPU));

// Evaluates an ensemble: each member's state is loaded into `network` in turn and the members'
// softmax outputs are averaged per example. The network's own state is restored afterwards.
Evaluation evaluate_ensemble(Network& network, const std::vector<NamedTensors>& members,
                             BatchSource& source, std::int64_t num_classes,
                             const c10::Device& device = c10::Device(c10::kCPU));

// A text table of a confusion matrix with class names.
std::string format_confusion(const Evaluation& evaluation,
                             const std::vector<std::string>& class_names);

}  // namespace tlkit::train
