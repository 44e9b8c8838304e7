#pragma once
// Class-balanced sampling and the class-imbalance check.
//
// balanced_order is torch's WeightedRandomSampler(weights = 1 / count[label], num_samples = n,
// replacement = True): n draws with replacement, each class equally likely in expectation and
// every image of a class equally likely within it. The draws come from one std::mt19937_64 seeded
// by the caller (from the run's seed and the epoch), so the order never depends on threads or on
// how many processes share the epoch.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tlkit::data {

class Dataset;

// n = labels.size() indices into `labels`, drawn with probability 1 / (classes x count[label])
// each.
std::vector<size_t> balanced_order(const std::vector<int64_t>& labels, std::uint64_t seed);

// When the largest class has `ratio` times the images of the smallest or more: a sentence naming
// both classes and their counts (the warning the scan prints); "" otherwise. Classes without any
// image count as 0 images.
std::string imbalance_warning(const std::vector<size_t>& counts,
                              const std::vector<std::string>& classes, double ratio = 5);

// Logs imbalance_warning for `dataset` (named `what`, e.g. "training split"), if any.
void warn_if_imbalanced(const Dataset& dataset, const std::string& what);

}  // namespace tlkit::data
