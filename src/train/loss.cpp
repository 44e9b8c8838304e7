#include <tlkit/train/loss.h>

#include <cmath>
#include <cstdlib>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>

namespace tlkit::train {
namespace {

std::vector<double> parse_weights(const std::string& spec) {
  std::vector<double> weights;
  for (const auto& piece : split_trimmed(spec, ',')) {
    char* end = nullptr;
    const double w = std::strtod(piece.c_str(), &end);
    TLKIT_CHECK(!piece.empty() && end == piece.c_str() + piece.size(), "class weights: '", spec,
                "' is not none, auto or a list of numbers separated by commas");
    TLKIT_CHECK(std::isfinite(w) && w > 0, "class weights: every weight must be positive, got ",
                piece, " in '", spec, "'");
    weights.push_back(w);
  }
  return weights;
}

}  // namespace

at::Tensor class_weight_tensor(const std::vector<double>& class_weights, const at::Tensor& logits) {
  if (class_weights.empty()) return {};
  return at::tensor(class_weights, at::kDouble)
      .to(logits.device(), logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
}

void check_loss_options(const LossOptions& options, std::int64_t num_classes) {
  TLKIT_CHECK(std::isfinite(options.label_smoothing) && options.label_smoothing >= 0 &&
                  options.label_smoothing < 1,
              "label smoothing must be in [0, 1) (0 = off, 0.1 is usual), got ",
              options.label_smoothing);
  if (options.class_weights.empty()) return;
  TLKIT_CHECK(static_cast<std::int64_t>(options.class_weights.size()) == num_classes, "got ",
              options.class_weights.size(), " class weights for ", num_classes,
              " classes: give one weight per class, in the order of the class names");
  for (const double w : options.class_weights)
    TLKIT_CHECK(std::isfinite(w) && w > 0, "class weights must be positive, got ", w);
}

at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& targets,
                               double label_smoothing, const at::Tensor& weight) {
  // ATen's own cross_entropy: the formula of loss.h, as Python's CrossEntropyLoss computes it.
  return at::cross_entropy_loss(logits, targets, weight, at::Reduction::Mean, -100,
                                label_smoothing);
}

at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& targets,
                               const LossOptions& options) {
  return classification_loss(logits, targets, options.label_smoothing,
                             class_weight_tensor(options.class_weights, logits));
}

at::Tensor soft_target_loss(const at::Tensor& logits, const at::Tensor& probabilities,
                            const at::Tensor& weight) {
  TLKIT_CHECK(probabilities.sizes() == logits.sizes(), "soft targets ", probabilities.sizes(),
              " do not match the logits ", logits.sizes());
  // ATen's cross_entropy with probability targets: the formula of loss.h.
  return at::cross_entropy_loss(logits, probabilities.to(logits.scalar_type()), weight,
                                at::Reduction::Mean, -100, 0.0);
}

at::Tensor soft_target_loss(const at::Tensor& logits, const at::Tensor& probabilities,
                            const std::vector<double>& class_weights) {
  return soft_target_loss(logits, probabilities, class_weight_tensor(class_weights, logits));
}

std::vector<double> balanced_class_weights(const std::vector<size_t>& counts) {
  TLKIT_CHECK(!counts.empty(), "class weights: no classes");
  double total = 0;
  for (size_t c = 0; c < counts.size(); ++c) {
    TLKIT_CHECK(counts[c] > 0, "class weights auto: class ", c,
                " has no training images; give explicit weights or add images");
    total += static_cast<double>(counts[c]);
  }
  std::vector<double> weights;
  const double classes = static_cast<double>(counts.size());
  for (const auto count : counts) weights.push_back(total / (classes * static_cast<double>(count)));
  return weights;
}

void check_class_weights_spec(const std::string& spec) {
  if (spec.empty() || spec == "none" || spec == "auto") return;
  parse_weights(spec);
}

std::vector<double> parse_class_weights(const std::string& spec, std::int64_t num_classes) {
  if (spec.empty() || spec == "none") return {};
  TLKIT_CHECK(spec != "auto", "class weights 'auto' are resolved from the training data's counts");
  auto weights = parse_weights(spec);
  TLKIT_CHECK(static_cast<std::int64_t>(weights.size()) == num_classes, "class weights: '", spec,
              "' gives ", weights.size(), " weights but the data has ", num_classes,
              " classes; give one per class, in the order of the class names");
  return weights;
}

std::vector<double> resolve_class_weights(const std::string& spec,
                                          const std::vector<size_t>& counts) {
  if (spec == "auto") return balanced_class_weights(counts);
  return parse_class_weights(spec, static_cast<std::int64_t>(counts.size()));
}

std::string format_class_weights(const std::vector<double>& weights) {
  std::string text;
  for (const double w : weights) text += (text.empty() ? "" : ",") + fmt::format("{}", w);
  return text;
}

}  // namespace tlkit::train
