#pragma once
// The training loss: cross-entropy with optional label smoothing and class weights, exactly
// torch's CrossEntropyLoss(weight=w, label_smoothing=eps) with mean reduction (Szegedy et al.
// 2016, "Rethinking the Inception Architecture"):
//
//   loss = sum_i w[y_i] * ((1 - eps) * -log p_i[y_i]) + (eps / C) * sum_i sum_c w[c] * -log p_i[c]
//          ---------------------------------------------------------------------------------------
//                                           sum_i w[y_i]
//
// (w = 1 without weights: the mean over the batch). Validation and test losses stay plain
// cross-entropy, so val_loss means the same whatever the training loss.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::train {

struct LossOptions {
  double label_smoothing = 0;         // eps in [0, 1)
  std::vector<double> class_weights;  // one per class, positive; empty = unweighted
  bool operator==(const LossOptions& other) const {
    return label_smoothing == other.label_smoothing && class_weights == other.class_weights;
  }
  bool plain() const { return label_smoothing == 0 && class_weights.empty(); }
};

// Throws tlkit::Error naming the problem (eps outside [0, 1), a weight count other than
// `num_classes`, a weight that is not positive and finite).
void check_loss_options(const LossOptions& options, std::int64_t num_classes);

// The mean training loss of `logits` [B, C] against class indices `targets` [B].
at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& targets,
                               const LossOptions& options);

// The loss against soft targets `probabilities` [B, C] (e.g. mixed ones, train/mix.h, which
// already carry any label smoothing), timm's SoftTargetCrossEntropy with torch's class weights:
//
//   loss = (1 / B) sum_i sum_c -w[c] y_ic log p_ic        (w = 1 without weights)
//
// exactly torch's CrossEntropyLoss(weight=w) with probability targets: each class term weighted,
// the mean over the batch (not divided by the summed weights, as with class indices).
at::Tensor soft_target_loss(const at::Tensor& logits, const at::Tensor& probabilities,
                            const std::vector<double>& class_weights);

// The same losses with the class weights already a tensor (undefined: unweighted), e.g. built
// once per run by the trainer instead of once per step.
at::Tensor class_weight_tensor(const std::vector<double>& class_weights, const at::Tensor& logits);
at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& targets,
                               double label_smoothing, const at::Tensor& weight);
at::Tensor soft_target_loss(const at::Tensor& logits, const at::Tensor& probabilities,
                            const at::Tensor& weight);

// scikit-learn's class_weight="balanced": n_samples / (n_classes * count[c]). Every class must
// have at least one sample.
std::vector<double> balanced_class_weights(const std::vector<size_t>& counts);

// A class-weights spec: "none" (or empty) -> {}, "auto" -> balanced_class_weights(counts),
// "w1,w2,..." -> those weights (as many as classes, each positive). Throws naming the problem.
std::vector<double> resolve_class_weights(const std::string& spec,
                                          const std::vector<size_t>& counts);
// A spec without "auto" (resolved before): "none" -> {}, a list -> its `num_classes` weights.
std::vector<double> parse_class_weights(const std::string& spec, std::int64_t num_classes);
// The spec's form alone (before the data is known): throws on a malformed or non-positive list.
void check_class_weights_spec(const std::string& spec);
// Weights as a spec that parses back to the same doubles ("0.5,2,1.25").
std::string format_class_weights(const std::vector<double>& weights);

}  // namespace tlkit::train
