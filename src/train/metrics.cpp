#include <tlkit/train/metrics.h>

#include <iomanip>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <tlkit/core/error.h>
#include <tlkit/train/distributed.h>

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

std::vector<double> Evaluation::per_class_accuracy() const {
  std::vector<double> accuracy;
  if (!confusion.defined()) return accuracy;
  for (std::int64_t c = 0; c < confusion.size(0); ++c) {
    const auto total = confusion[c].sum().item<std::int64_t>();
    const auto hit = confusion[c][c].item<std::int64_t>();
    accuracy.push_back(total > 0 ? static_cast<double>(hit) / static_cast<double>(total) : 0.0);
  }
  return accuracy;
}

EvaluationAccumulator::EvaluationAccumulator(std::int64_t num_classes)
    : confusion_(at::zeros({num_classes, num_classes}, at::TensorOptions().dtype(at::kLong))) {
  TLKIT_CHECK(num_classes > 0, "number of classes must be positive, got ", num_classes);
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
  auto predicted = log_p.argmax(1);
  correct_ += predicted.eq(y).sum().item<std::int64_t>();
  examples_ += y.size(0);
  confusion_.view(-1).index_add_(0, y * num_classes + predicted, at::ones_like(y));
}

void EvaluationAccumulator::reduce_over_ranks() {
  auto* comm = world();
  if (!comm) return;
  const auto sums = allreduce_sum(
      *comm, {loss_sum_, static_cast<double>(correct_), static_cast<double>(examples_)});
  loss_sum_ = sums[0];
  correct_ = static_cast<std::int64_t>(sums[1]);
  examples_ = static_cast<std::int64_t>(sums[2]);
  std::vector<at::Tensor> confusion{confusion_.contiguous()};
  comm->allreduce_sum(confusion);
  confusion_ = confusion.front();
}

Evaluation EvaluationAccumulator::result() const {
  Evaluation evaluation;
  evaluation.examples = examples_;
  evaluation.loss = examples_ ? loss_sum_ / static_cast<double>(examples_) : 0.0;
  evaluation.accuracy =
      examples_ ? static_cast<double>(correct_) / static_cast<double>(examples_) : 0.0;
  evaluation.confusion = confusion_.clone();
  return evaluation;
}

namespace {
// Runs `network` over `source` in eval mode, calling visit(batch_index, log_softmax, targets).
template <typename Visit>
void for_each_prediction(Network& network, BatchSource& source, const c10::Device& device,
                         Visit visit) {
  torch::NoGradGuard no_grad;
  const bool was_training = network.is_training();
  network.train(false);
  source.start_epoch(0);
  std::int64_t index = 0;
  while (auto batch = source.next()) {
    auto logits = network.forward(batch->inputs.to(device));
    visit(index++, at::log_softmax(logits.to(at::kDouble), 1), batch->targets);
  }
  network.train(was_training);
}
}  // namespace

Evaluation evaluate(Network& network, BatchSource& source, std::int64_t num_classes,
                    const c10::Device& device) {
  EvaluationAccumulator accumulator(num_classes);
  for_each_prediction(network, source, device,
                      [&](std::int64_t, const at::Tensor& log_p, const at::Tensor& y) {
                        accumulator.add_log_probabilities(log_p, y);
                      });
  if (source.shards() > 1) accumulator.reduce_over_ranks();
  return accumulator.result();
}

Evaluation evaluate_ensemble(Network& network, const std::vector<NamedTensors>& members,
                             BatchSource& source, std::int64_t num_classes,
                             const c10::Device& device) {
  TLKIT_CHECK(!members.empty(), "the ensemble has no members (no snapshot was taken)");
  const auto own_state = clone_state(network);
  std::vector<at::Tensor> probability_sums;
  std::vector<at::Tensor> targets;
  for (const auto& member : members) {
    copy_state(network, member);
    for_each_prediction(network, source, device,
                        [&](std::int64_t i, const at::Tensor& log_p, const at::Tensor& y) {
                          // ensemble prediction = mean over members of softmax(logits)
                          if (static_cast<size_t>(i) == probability_sums.size()) {
                            probability_sums.push_back(log_p.exp().cpu());
                            targets.push_back(y);
                          } else {
                            probability_sums[static_cast<size_t>(i)] += log_p.exp().cpu();
                          }
                        });
  }
  copy_state(network, own_state);
  EvaluationAccumulator accumulator(num_classes);
  const double count = static_cast<double>(members.size());
  for (size_t i = 0; i < probability_sums.size(); ++i)
    accumulator.add_log_probabilities((probability_sums[i] / count).log(), targets[i]);
  if (source.shards() > 1) accumulator.reduce_over_ranks();
  return accumulator.result();
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
