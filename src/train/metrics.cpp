#include <tlkit/train/metrics.h>

#include <algorithm>
#include <iomanip>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <tlkit/core/error.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/interpretation.h>
#include <tlkit/train/loader_source.h>

namespace tlkit::train {

void Metrics::set(const std::string& name, double value) {
  for (auto& item : items_) {
    if (item.first == name) {
      item.second = value;
      return;
    }
  }
  items_.emplace_back(name, value);
}

std::optional<double> Metrics::get(const std::string& name) const {
  for (const auto& item : items_)
    if (item.first == name) return item.second;
  return std::nullopt;
}

double Metrics::at(const std::string& name) const {
  if (auto value = get(name)) return *value;
  std::string known;
  for (const auto& item : items_) known += (known.empty() ? "" : ", ") + item.first;
  fail("no metric named '", name, "'; known metrics: ", known);
}

std::vector<ClassScores> Evaluation::per_class() const {
  std::vector<ClassScores> scores;
  if (!confusion.defined()) return scores;
  const auto m = confusion.to(at::kCPU, at::kLong).contiguous();
  const auto cells = m.accessor<std::int64_t, 2>();
  const auto n = m.size(0);
  for (std::int64_t c = 0; c < n; ++c) {
    std::int64_t support = 0, predicted = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      support += cells[c][j];
      predicted += cells[j][c];
    }
    const auto hits = static_cast<double>(cells[c][c]);
    ClassScores s;
    s.support = support;
    s.precision = predicted > 0 ? hits / static_cast<double>(predicted) : 0.0;
    s.recall = support > 0 ? hits / static_cast<double>(support) : 0.0;
    // F1 = 2 P R / (P + R), 0 where P + R = 0 (sklearn's zero_division default)
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
    scores.push_back(s);
  }
  return scores;
}

std::vector<double> Evaluation::per_class_accuracy() const {
  std::vector<double> accuracy;
  for (const auto& s : per_class()) accuracy.push_back(s.recall);
  return accuracy;
}

double Evaluation::macro_f1() const {
  if (!confusion.defined()) return 0.0;
  const auto predicted = confusion.sum(0);
  const auto scores = per_class();
  double sum = 0;
  std::int64_t counted = 0;
  for (size_t c = 0; c < scores.size(); ++c) {
    // sklearn averages over the labels that occur in y_true or y_pred
    if (scores[c].support == 0 && predicted[static_cast<std::int64_t>(c)].item<std::int64_t>() == 0)
      continue;
    sum += scores[c].f1;
    ++counted;
  }
  return counted ? sum / static_cast<double>(counted) : 0.0;
}

double Evaluation::balanced_accuracy() const {
  double sum = 0;
  std::int64_t counted = 0;
  for (const auto& s : per_class()) {
    if (s.support == 0) continue;  // sklearn leaves out classes absent from y_true
    sum += s.recall;
    ++counted;
  }
  return counted ? sum / static_cast<double>(counted) : 0.0;
}

double Evaluation::expected_calibration_error() const {
  if (!calibration.defined() || examples == 0) return 0.0;
  // ECE = sum_b |acc_b - conf_b| n_b / n = sum_b |correct_b - summed confidence_b| / n
  const auto bins = calibration.to(at::kCPU, at::kDouble);
  return (bins.select(1, 2) - bins.select(1, 1)).abs().sum().item<double>() /
         static_cast<double>(examples);
}

EvaluationAccumulator::EvaluationAccumulator(std::int64_t num_classes, std::int64_t top_k)
    : top_k_(std::min(top_k, num_classes)),
      confusion_(at::zeros({num_classes, num_classes}, at::TensorOptions().dtype(at::kLong))),
      calibration_(at::zeros({kCalibrationBins, 3}, at::TensorOptions().dtype(at::kDouble))) {
  TLKIT_CHECK(num_classes > 0, "number of classes must be positive, got ", num_classes);
  TLKIT_CHECK(top_k > 0, "top-k accuracy needs k >= 1, got ", top_k);
}

void EvaluationAccumulator::add_log_probabilities(const at::Tensor& log_probabilities,
                                                  const at::Tensor& targets) {
  const auto num_classes = confusion_.size(0);
  TLKIT_CHECK(log_probabilities.dim() == 2 && log_probabilities.size(1) == num_classes,
              "the model gives ", log_probabilities.sizes(), " scores but the data has ",
              num_classes, " classes; replace the head for this dataset");
  auto log_p = log_probabilities.detach().to(at::kCPU, at::kDouble);
  auto y = targets.to(at::kCPU, at::kLong);
  loss_sum_ += at::nll_loss(log_p, y, {}, at::Reduction::Sum).item<double>();
  const auto top = std::get<0>(log_p.max(1));
  const auto predicted = log_p.argmax(1);  // the first most probable class on a tie (numpy's too)
  const auto hit = predicted.eq(y);
  correct_ += hit.sum().item<std::int64_t>();
  examples_ += y.size(0);
  confusion_.view(-1).index_add_(0, y * num_classes + predicted, at::ones_like(y));
  // top-k: the true class's rank = classes more probable, or as probable with a lower index
  const auto own = log_p.gather(1, y.unsqueeze(1));
  const auto index = at::arange(num_classes, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
  const auto ahead = log_p.gt(own).logical_or(log_p.eq(own).logical_and(index.lt(y.unsqueeze(1))));
  top_k_correct_ += ahead.sum(1).lt(top_k_).sum().item<std::int64_t>();
  // calibration: bin b holds the confidences in (b / 15, (b + 1) / 15]
  // (a diverged network's NaN counts in the first bin: its loss already says it is broken)
  const auto confidence = top.exp().nan_to_num(0.0, 1.0, 0.0);
  const auto bin = (confidence * static_cast<double>(kCalibrationBins))
                       .ceil()
                       .sub(1)
                       .clamp(0, kCalibrationBins - 1)
                       .to(at::kLong);
  calibration_.index_add_(
      0, bin, at::stack({at::ones_like(confidence), confidence, hit.to(at::kDouble)}, 1));
}

void EvaluationAccumulator::reduce_over_ranks() {
  auto* comm = world();
  if (!comm) return;
  const auto sums =
      allreduce_sum(*comm, {loss_sum_, static_cast<double>(correct_),
                            static_cast<double>(top_k_correct_), static_cast<double>(examples_)});
  loss_sum_ = sums[0];
  correct_ = static_cast<std::int64_t>(sums[1]);
  top_k_correct_ = static_cast<std::int64_t>(sums[2]);
  examples_ = static_cast<std::int64_t>(sums[3]);
  std::vector<at::Tensor> confusion{confusion_.contiguous()};
  comm->allreduce_sum(confusion);
  confusion_ = confusion.front();
  std::vector<at::Tensor> calibration{calibration_.contiguous()};
  comm->allreduce_sum(calibration);
  calibration_ = calibration.front();
}

Evaluation EvaluationAccumulator::result() const {
  Evaluation evaluation;
  const auto n = static_cast<double>(examples_);
  evaluation.examples = examples_;
  evaluation.loss = examples_ ? loss_sum_ / n : 0.0;
  evaluation.accuracy = examples_ ? static_cast<double>(correct_) / n : 0.0;
  evaluation.top_k = top_k_;
  evaluation.top_k_accuracy = examples_ ? static_cast<double>(top_k_correct_) / n : 0.0;
  evaluation.confusion = confusion_.clone();
  evaluation.calibration = calibration_.clone();
  return evaluation;
}

Evaluation classification_metrics(const at::Tensor& scores, const at::Tensor& labels,
                                  ScoreKind kind, std::int64_t top_k) {
  TLKIT_CHECK(scores.dim() == 2 && scores.size(1) > 0, "classification metrics need [N, C] "
              "scores, got ", scores.sizes());
  TLKIT_CHECK(labels.dim() == 1 && labels.size(0) == scores.size(0), "classification metrics "
              "need one label per row of scores: ", labels.sizes(), " for ", scores.sizes());
  const auto y = labels.to(at::kCPU, at::kLong);
  TLKIT_CHECK(y.numel() == 0 || (y.min().item<std::int64_t>() >= 0 &&
                                 y.max().item<std::int64_t>() < scores.size(1)),
              "labels must be class indices in 0..", scores.size(1) - 1);
  const auto s = scores.detach().to(at::kCPU, at::kDouble);
  EvaluationAccumulator accumulator(scores.size(1), top_k);
  accumulator.add_log_probabilities(kind == ScoreKind::Logits ? at::log_softmax(s, 1) : s.log(), y);
  return accumulator.result();
}

namespace {
// A batch with the dataset index of each row where the source is a data loader (undefined
// otherwise): the loader's own batches carry them.
std::optional<Batch> next_with_indices(BatchSource& source, at::Tensor& indices) {
  if (auto* loading = dynamic_cast<LoaderSource*>(&source)) {
    auto batch = loading->loader().next();
    if (!batch) return std::nullopt;
    std::vector<std::int64_t> rows(batch->indices.begin(), batch->indices.end());
    indices = at::tensor(rows);
    return Batch{batch->images, batch->labels};
  }
  indices = at::Tensor();
  return source.next();
}

// Runs `network` over `source` in eval mode, calling
// visit(batch_index, log_softmax, targets, dataset indices or undefined).
template <typename Visit>
void for_each_prediction(Network& network, BatchSource& source, const c10::Device& device,
                         Visit visit) {
  torch::NoGradGuard no_grad;
  const bool was_training = network.is_training();
  network.train(false);
  source.start_epoch(0);
  std::int64_t index = 0;
  at::Tensor indices;
  while (auto batch = next_with_indices(source, indices)) {
    auto logits = network.forward(batch->inputs.to(device));
    visit(index++, at::log_softmax(logits.to(at::kDouble), 1), batch->targets, indices);
  }
  network.train(was_training);
}

Evaluation evaluate_impl(Network& network, BatchSource& source, std::int64_t num_classes,
                         const c10::Device& device, std::int64_t top_k, ExampleOutcomes* outcomes) {
  EvaluationAccumulator accumulator(num_classes, top_k);
  for_each_prediction(
      network, source, device,
      [&](std::int64_t, const at::Tensor& log_p, const at::Tensor& y, const at::Tensor& rows) {
        accumulator.add_log_probabilities(log_p, y);
        if (outcomes) outcomes->add(log_p, y, rows);
      });
  if (source.shards() > 1) accumulator.reduce_over_ranks();
  return accumulator.result();
}

Evaluation evaluate_ensemble_impl(Network& network, const std::vector<NamedTensors>& members,
                                  BatchSource& source, std::int64_t num_classes,
                                  const c10::Device& device, std::int64_t top_k,
                                  ExampleOutcomes* outcomes) {
  TLKIT_CHECK(!members.empty(), "the ensemble has no members (no snapshot was taken)");
  const auto own_state = clone_state(network);
  std::vector<at::Tensor> probability_sums;
  std::vector<at::Tensor> targets, indices;
  for (const auto& member : members) {
    copy_state(network, member);
    for_each_prediction(
        network, source, device,
        [&](std::int64_t i, const at::Tensor& log_p, const at::Tensor& y, const at::Tensor& rows) {
          // ensemble prediction = mean over members of softmax(logits)
          if (static_cast<size_t>(i) == probability_sums.size()) {
            probability_sums.push_back(log_p.exp().cpu());
            targets.push_back(y);
            indices.push_back(rows);
          } else {
            probability_sums[static_cast<size_t>(i)] += log_p.exp().cpu();
          }
        });
  }
  copy_state(network, own_state);
  EvaluationAccumulator accumulator(num_classes, top_k);
  const double count = static_cast<double>(members.size());
  for (size_t i = 0; i < probability_sums.size(); ++i) {
    const auto log_p = (probability_sums[i] / count).log();
    accumulator.add_log_probabilities(log_p, targets[i]);
    if (outcomes) outcomes->add(log_p, targets[i], indices[i]);
  }
  if (source.shards() > 1) accumulator.reduce_over_ranks();
  return accumulator.result();
}

}  // namespace

Evaluation evaluate(Network& network, BatchSource& source, std::int64_t num_classes,
                    const c10::Device& device, std::int64_t top_k) {
  return evaluate_impl(network, source, num_classes, device, top_k, nullptr);
}

Evaluation evaluate(Network& network, BatchSource& source, std::int64_t num_classes,
                    const c10::Device& device, std::int64_t top_k, ExampleOutcomes& outcomes) {
  return evaluate_impl(network, source, num_classes, device, top_k, &outcomes);
}

Evaluation evaluate_ensemble(Network& network, const std::vector<NamedTensors>& members,
                             BatchSource& source, std::int64_t num_classes,
                             const c10::Device& device, std::int64_t top_k) {
  return evaluate_ensemble_impl(network, members, source, num_classes, device, top_k, nullptr);
}

Evaluation evaluate_ensemble(Network& network, const std::vector<NamedTensors>& members,
                             BatchSource& source, std::int64_t num_classes,
                             const c10::Device& device, std::int64_t top_k,
                             ExampleOutcomes& outcomes) {
  return evaluate_ensemble_impl(network, members, source, num_classes, device, top_k, &outcomes);
}

std::string format_confusion(const Evaluation& evaluation,
                             const std::vector<std::string>& class_names) {
  std::ostringstream out;
  const auto n = evaluation.confusion.size(0);
  size_t width = 6;
  for (const auto& name : class_names) width = std::max(width, name.size() + 1);
  out << std::setw(static_cast<int>(width)) << "true\\pred";
  for (std::int64_t j = 0; j < n; ++j) out << std::setw(7) << j;
  out << "\n";
  for (std::int64_t i = 0; i < n; ++i) {
    const std::string name =
        i < static_cast<std::int64_t>(class_names.size()) ? class_names[i] : std::to_string(i);
    out << std::setw(static_cast<int>(width)) << name;
    for (std::int64_t j = 0; j < n; ++j)
      out << std::setw(7) << evaluation.confusion[i][j].item<std::int64_t>();
    out << "\n";
  }
  return out.str();
}

}  // namespace tlkit::train
