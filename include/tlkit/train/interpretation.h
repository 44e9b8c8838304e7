#pragma once
// What a classifier gets wrong (fastai's ClassificationInterpretation): the most confused pairs of
// classes from a confusion matrix, the row-normalised matrix, and the images with the largest
// losses among the wrong predictions ("top losses"), from the outcome of each evaluated image.
//   loss_i = -log p_i(y_i)    (the image's cross-entropy; the prediction is argmax_c p_i(c))

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include <tlkit/train/metrics.h>

namespace tlkit::train {

// One row per evaluated image, in evaluation order.
struct ExampleOutcomes {
  std::vector<std::int64_t> index;      // the dataset index (-1 where the source has none)
  std::vector<std::int64_t> target;     // the true class
  std::vector<std::int64_t> predicted;  // the most probable class (the first on a tie)
  std::vector<double> probability;      // of the predicted class
  std::vector<double> loss;             // -log p(true class)

  // A batch's log-probabilities [B, C], targets [B] and dataset indices [B] (undefined = none).
  void add(const at::Tensor& log_probabilities, const at::Tensor& targets,
           const at::Tensor& indices);
  size_t size() const { return target.size(); }
};

// train::evaluate and train::evaluate_ensemble (train/metrics.h) that also append each image's
// outcome; the dataset indices are known when the source is a LoaderSource.
Evaluation evaluate(Network& network, BatchSource& source, std::int64_t num_classes,
                    const c10::Device& device, std::int64_t top_k, ExampleOutcomes& outcomes);
Evaluation evaluate_ensemble(Network& network, const std::vector<NamedTensors>& members,
                             BatchSource& source, std::int64_t num_classes,
                             const c10::Device& device, std::int64_t top_k,
                             ExampleOutcomes& outcomes);

struct TopLoss {
  std::int64_t row = 0;    // in ExampleOutcomes
  std::int64_t index = 0;  // the dataset index
  std::int64_t target = 0, predicted = 0;
  double probability = 0, loss = 0;
};

// The `count` wrong predictions with the largest loss, largest first (ties: earlier row first).
std::vector<TopLoss> top_losses(const ExampleOutcomes& outcomes, size_t count);

struct ConfusedPair {
  std::int64_t actual = 0, predicted = 0, count = 0;
};

// The off-diagonal cells of a [C, C] confusion matrix (rows: true class) with at least
// `min_count` images, most images first (ties: by true class, then predicted class).
std::vector<ConfusedPair> most_confused(const at::Tensor& confusion, std::int64_t min_count = 1);

// [C, C] float64: each row divided by its sum (a class without images: a row of zeros).
at::Tensor row_normalised(const at::Tensor& confusion);

// "  b_middle -> a_top: 3 images (30.0% of b_middle)", one line per pair (at most `limit`);
// "  none: every image is classified correctly" when there is no pair.
std::string format_most_confused(const std::vector<ConfusedPair>& pairs,
                                 const at::Tensor& confusion,
                                 const std::vector<std::string>& class_names, size_t limit = 10);

}  // namespace tlkit::train
