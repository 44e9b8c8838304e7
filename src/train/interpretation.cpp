#include <tlkit/train/interpretation.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>

#include <tlkit/core/error.h>

namespace tlkit::train {
namespace {
std::string class_name(const std::vector<std::string>& names, std::int64_t c) {
  return c >= 0 && c < static_cast<std::int64_t>(names.size()) ? names[static_cast<size_t>(c)]
                                                               : std::to_string(c);
}
}  // namespace

void ExampleOutcomes::add(const at::Tensor& log_probabilities, const at::Tensor& targets,
                          const at::Tensor& indices) {
  const auto log_p = log_probabilities.detach().to(at::kCPU, at::kDouble);
  const auto y = targets.to(at::kCPU, at::kLong);
  TLKIT_CHECK(log_p.dim() == 2 && y.dim() == 1 && y.size(0) == log_p.size(0),
              "outcomes need [B, C] log-probabilities and [B] targets, got ", log_p.sizes(),
              " and ", y.sizes());
  const auto [best, best_class] = log_p.max(1);  // the first maximum on a tie, as argmax
  const auto true_log_p = log_p.gather(1, y.unsqueeze(1)).squeeze(1);
  const auto rows = log_p.size(0);
  const auto ids = indices.defined() ? indices.to(at::kCPU, at::kLong) : at::Tensor();
  for (std::int64_t i = 0; i < rows; ++i) {
    index.push_back(ids.defined() ? ids[i].item<std::int64_t>() : -1);
    target.push_back(y[i].item<std::int64_t>());
    predicted.push_back(best_class[i].item<std::int64_t>());
    probability.push_back(std::exp(best[i].item<double>()));
    loss.push_back(-true_log_p[i].item<double>());
  }
}

std::vector<TopLoss> top_losses(const ExampleOutcomes& outcomes, size_t count) {
  std::vector<size_t> wrong;
  for (size_t i = 0; i < outcomes.size(); ++i)
    if (outcomes.predicted[i] != outcomes.target[i]) wrong.push_back(i);
  std::stable_sort(wrong.begin(), wrong.end(),
                   [&](size_t a, size_t b) { return outcomes.loss[a] > outcomes.loss[b]; });
  if (wrong.size() > count) wrong.resize(count);
  std::vector<TopLoss> result;
  for (const auto i : wrong)
    result.push_back({static_cast<std::int64_t>(i), outcomes.index[i], outcomes.target[i],
                      outcomes.predicted[i], outcomes.probability[i], outcomes.loss[i]});
  return result;
}

std::vector<ConfusedPair> most_confused(const at::Tensor& confusion, std::int64_t min_count) {
  TLKIT_CHECK(confusion.dim() == 2 && confusion.size(0) == confusion.size(1),
              "a confusion matrix is square, got ", confusion.sizes());
  const auto m = confusion.to(at::kCPU, at::kLong).contiguous();
  const auto n = m.size(0);
  const auto* cells = m.data_ptr<std::int64_t>();
  std::vector<ConfusedPair> pairs;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      if (i != j && cells[i * n + j] >= std::max<std::int64_t>(min_count, 1))
        pairs.push_back({i, j, cells[i * n + j]});
  // stable: pairs are already in (true, predicted) order
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const ConfusedPair& a, const ConfusedPair& b) { return a.count > b.count; });
  return pairs;
}

at::Tensor row_normalised(const at::Tensor& confusion) {
  const auto m = confusion.to(at::kCPU, at::kDouble);
  const auto sums = m.sum(1, true);
  return at::where(sums > 0, m / sums.clamp_min(1), at::zeros_like(m));
}

std::string format_most_confused(const std::vector<ConfusedPair>& pairs,
                                 const at::Tensor& confusion,
                                 const std::vector<std::string>& class_names, size_t limit) {
  if (pairs.empty()) return "  none: every image is classified correctly\n";
  const auto totals = confusion.to(at::kCPU, at::kLong).sum(1);
  std::string out;
  for (size_t i = 0; i < pairs.size() && i < limit; ++i) {
    const auto& p = pairs[i];
    const auto total = totals[p.actual].item<std::int64_t>();
    out += fmt::format(
        "  {} -> {}: {} image{} ({:.1f}% of {})\n", class_name(class_names, p.actual),
        class_name(class_names, p.predicted), p.count, p.count == 1 ? "" : "s",
        total > 0 ? 100.0 * static_cast<double>(p.count) / static_cast<double>(total) : 0.0,
        class_name(class_names, p.actual));
  }
  if (pairs.size() > limit) out += fmt::format("  ... and {} more pairs\n", pairs.size() - limit);
  return out;
}

}  // namespace tlkit::train
