#pragma once
// Classification metrics: NLL, top-1 and top-k accuracy, per-class precision / recall / F1, macro
// F1, balanced accuracy, expected calibration error and the confusion matrix, defined as
// scikit-learn defines them; evaluation of one network or of an ensemble whose members' softmax
// outputs are averaged.

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

inline constexpr std::int64_t kDefaultTopK = 5;        // top-k accuracy's k unless told
inline constexpr std::int64_t kCalibrationBins = 15;   // equal-width confidence bins of the ECE

// One class's scores, as sklearn.metrics.precision_recall_fscore_support gives them: a score
// whose denominator is 0 (a class never predicted, or absent from the labels) is 0.
struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  std::int64_t support = 0;  // images of the class
};

// The prediction of an image is its most probable class, the first one on a tie (numpy's
// argmax); top-k counts an image when its class is among the k most probable, ties broken
// toward the lower class index as well, so top-1 = accuracy.
struct Evaluation {
  double loss = 0;      // NLL: mean cross-entropy (of the averaged probabilities for an ensemble)
  double accuracy = 0;  // top-1
  std::int64_t examples = 0;
  at::Tensor confusion;  // [C, C] int64, rows = true class, columns = predicted
  std::int64_t top_k = 0;  // the k of top_k_accuracy (at most the number of classes)
  double top_k_accuracy = 0;
  // [kCalibrationBins, 3] double: per confidence bin ((b / 15, (b + 1) / 15], confidence = the
  // top probability) the images, their summed confidence and how many were right.
  at::Tensor calibration;

  std::vector<double> per_class_accuracy() const;  // = each class's recall
  std::vector<ClassScores> per_class() const;
  // Mean F1 over the classes in the labels or the predictions (sklearn's f1_score, 'macro').
  double macro_f1() const;
  // Mean recall over the classes in the labels (sklearn's balanced_accuracy_score).
  double balanced_accuracy() const;
  // Sum over the bins of |accuracy - mean confidence| x images in the bin / images.
  double expected_calibration_error() const;
};

// Adds a batch's (predicted probabilities or logits, targets) to running totals.
class EvaluationAccumulator {
 public:
  explicit EvaluationAccumulator(std::int64_t num_classes, std::int64_t top_k = kDefaultTopK);
  void add_log_probabilities(const at::Tensor& log_probabilities, const at::Tensor& targets);
  Evaluation result() const;
  // Adds every rank's totals (data parallelism: each rank evaluated its shard of the data).
  void reduce_over_ranks();

 private:
  double loss_sum_ = 0;
  std::int64_t correct_ = 0, top_k_correct_ = 0, examples_ = 0, top_k_;
  at::Tensor confusion_;
  at::Tensor calibration_;
};

enum class ScoreKind { Logits, Probabilities };

// Every metric of one set of predictions: `scores` [N, C] are logits (a softmax is applied) or
// probabilities (rows summing to 1), `labels` [N] class indices in 0..C-1.
Evaluation classification_metrics(const at::Tensor& scores, const at::Tensor& labels,
                                  ScoreKind kind, std::int64_t top_k = kDefaultTopK);

// Evaluates `network` in eval mode without gradients over one pass of `source`.
Evaluation evaluate(Network& network, BatchSource& source, std::int64_t num_classes,
                    const c10::Device& device = c10::Device(c10::kCPU),
                    std::int64_t top_k = kDefaultTopK);

// Evaluates an ensemble: each member's state is loaded into `network` in turn and the members'
// softmax outputs are averaged per example. The network's own state is restored afterwards.
Evaluation evaluate_ensemble(Network& network, const std::vector<NamedTensors>& members,
                             BatchSource& source, std::int64_t num_classes,
                             const c10::Device& device = c10::Device(c10::kCPU),
                             std::int64_t top_k = kDefaultTopK);

// A text table of a confusion matrix with class names.
std::string format_confusion(const Evaluation& evaluation,
                             const std::vector<std::string>& class_names);

}  // namespace tlkit::train
