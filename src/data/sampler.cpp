#include <tlkit/data/sampler.h>

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/dataset.h>
#include <tlkit/data/random.h>

namespace tlkit::data {

std::vector<size_t> balanced_order(const std::vector<int64_t>& labels, std::uint64_t seed) {
  if (labels.empty()) return {};
  const auto classes = static_cast<size_t>(*std::max_element(labels.begin(), labels.end())) + 1;
  std::vector<double> count(classes, 0);
  for (const auto label : labels) {
    TLKIT_CHECK(label >= 0, "balanced sampling: negative label ", label);
    ++count[static_cast<size_t>(label)];
  }
  // Cumulative weights 1 / count[label]; a draw u x total picks the first index past it.
  std::vector<double> cumulative(labels.size());
  double total = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    total += 1.0 / count[static_cast<size_t>(labels[i])];
    cumulative[i] = total;
  }
  std::mt19937_64 rng(seed);
  std::vector<size_t> order(labels.size());
  for (auto& index : order) {
    const double u = uniform01(rng) * total;
    const auto at = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    index = std::min(static_cast<size_t>(at - cumulative.begin()), labels.size() - 1);
  }
  return order;
}

std::string imbalance_warning(const std::vector<size_t>& counts,
                              const std::vector<std::string>& classes, double ratio) {
  if (counts.size() < 2) return "";
  const auto largest = std::max_element(counts.begin(), counts.end()) - counts.begin();
  const auto smallest = std::min_element(counts.begin(), counts.end()) - counts.begin();
  const auto big = counts[static_cast<size_t>(largest)],
             small = counts[static_cast<size_t>(smallest)];
  if (static_cast<double>(big) < ratio * static_cast<double>(small)) return "";
  const auto name = [&](std::ptrdiff_t c) {
    return static_cast<size_t>(c) < classes.size() ? classes[static_cast<size_t>(c)]
                                                   : std::to_string(c);
  };
  return fmt::format(
      "the classes are imbalanced: '{}' has {} images, '{}' only {} ({}); consider "
      "--class-weights auto or --sampler balanced, and read balanced accuracy and per-class "
      "recall in results.md",
      name(largest), big, name(smallest), small,
      small == 0 ? std::string("none at all")
                 : fmt::format("{:.1f}x", static_cast<double>(big) / static_cast<double>(small)));
}

void warn_if_imbalanced(const Dataset& dataset, const std::string& what) {
  const auto warning = imbalance_warning(class_counts(dataset), dataset.classes());
  if (!warning.empty()) logger()->warn("{}: {}", what, warning);
}

}  // namespace tlkit::data
