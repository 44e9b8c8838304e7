#include <tlkit/data/subset.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include <tlkit/core/error.h>
#include <tlkit/data/random.h>

namespace tlkit::data {
namespace {

// Indices of each class, each list shuffled by its own seeded stream.
std::vector<std::vector<size_t>> shuffled_by_class(const std::vector<int64_t>& labels,
                                                   std::uint64_t seed) {
  int64_t max_label = -1;
  for (int64_t label : labels) {
    TLKIT_CHECK(label >= 0, "negative label ", label,
                " cannot be stratified; labels must be class indices");
    max_label = std::max(max_label, label);
  }
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(max_label + 1));
  for (size_t i = 0; i < labels.size(); ++i) by_class[static_cast<size_t>(labels[i])].push_back(i);
  for (size_t c = 0; c < by_class.size(); ++c) {
    auto& members = by_class[c];
    const auto order = permutation(members.size(), derive_seed(seed, c));
    std::vector<size_t> shuffled(members.size());
    for (size_t k = 0; k < members.size(); ++k) shuffled[k] = members[order[k]];
    members = std::move(shuffled);
  }
  return by_class;
}

}  // namespace

Subset::Subset(std::shared_ptr<const Dataset> parent, std::vector<size_t> indices, std::string name)
    : parent_(std::move(parent)), indices_(std::move(indices)), name_(std::move(name)) {
  TLKIT_CHECK(parent_ != nullptr, "Subset '", name_, "' needs a dataset; got a null pointer");
  const auto all = parent_->labels();
  labels_.reserve(indices_.size());
  for (size_t index : indices_) {
    TLKIT_CHECK(index < all.size(), "Subset '", name_, "': index ", index, " is out of range for ",
                parent_->describe());
    labels_.push_back(all[index]);
  }
}

std::string Subset::source(size_t index) const {
  TLKIT_CHECK(index < indices_.size(), "sample index ", index, " is out of range for ", describe());
  return parent_->source(indices_[index]);
}

Sample Subset::get(size_t index) const {
  TLKIT_CHECK(index < indices_.size(), "sample index ", index, " is out of range for ", describe());
  return parent_->get(indices_[index]);
}

std::string Subset::describe() const {
  return parent_->describe() + ", " + name_ + " (" + std::to_string(indices_.size()) + " samples)";
}

Concat::Concat(std::vector<std::shared_ptr<const Dataset>> parts, std::string name)
    : parts_(std::move(parts)), name_(std::move(name)) {
  TLKIT_CHECK(!parts_.empty(), "Concat '", name_, "' needs at least one dataset");
  for (const auto& part : parts_) {
    TLKIT_CHECK(part != nullptr, "Concat '", name_, "' got a null dataset");
    TLKIT_CHECK(part->classes() == parts_.front()->classes(), "cannot pool ", part->describe(),
                " with ", parts_.front()->describe(), ": their class folders differ");
    starts_.push_back(labels_.size());
    const auto labels = part->labels();
    labels_.insert(labels_.end(), labels.begin(), labels.end());
  }
}

std::pair<const Dataset*, size_t> Concat::locate(size_t index) const {
  TLKIT_CHECK(index < labels_.size(), "sample index ", index, " is out of range for ", describe());
  size_t part = parts_.size() - 1;
  while (starts_[part] > index) --part;
  return {parts_[part].get(), index - starts_[part]};
}

Sample Concat::get(size_t index) const {
  const auto [part, local] = locate(index);
  return part->get(local);
}

std::string Concat::source(size_t index) const {
  const auto [part, local] = locate(index);
  return part->source(local);
}

std::string Concat::describe() const {
  return name_ + " (" + std::to_string(labels_.size()) + " images, " +
         std::to_string(classes().size()) + " classes)";
}

size_t Concat::skipped() const {
  size_t total = 0;
  for (const auto& part : parts_) total += part->skipped();
  return total;
}

IndexSplit stratified_split(const std::vector<int64_t>& labels, double fraction,
                            std::uint64_t seed) {
  TLKIT_CHECK(fraction >= 0 && fraction < 1, "val split ", fraction,
              " is out of range; use a fraction in [0, 1), e.g. 0.2");
  IndexSplit split;
  for (const auto& members : shuffled_by_class(labels, seed)) {
    if (members.empty()) continue;
    auto n_val = static_cast<size_t>(std::llround(static_cast<double>(members.size()) * fraction));
    n_val = std::min(n_val, members.size() - 1);
    split.val.insert(split.val.end(), members.begin(),
                     members.begin() + static_cast<std::ptrdiff_t>(n_val));
    split.train.insert(split.train.end(), members.begin() + static_cast<std::ptrdiff_t>(n_val),
                       members.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  return split;
}

std::vector<std::int64_t> stratified_folds(const std::vector<int64_t>& labels, std::int64_t folds,
                                           std::uint64_t seed) {
  TLKIT_CHECK(folds >= 2, "k-fold cross-validation needs at least 2 folds, got ", folds);
  std::vector<std::int64_t> fold(labels.size(), 0);
  std::int64_t next = 0;  // where the next class starts: fold sizes stay within one of each other
  for (const auto& members : shuffled_by_class(labels, derive_seed(seed, 0xf01d5))) {
    for (size_t k = 0; k < members.size(); ++k)
      fold[members[k]] = (next + static_cast<std::int64_t>(k)) % folds;
    next = (next + static_cast<std::int64_t>(members.size())) % folds;
  }
  return fold;
}

std::int64_t usable_folds(const std::vector<int64_t>& labels, std::int64_t wanted) {
  std::vector<std::int64_t> count;
  for (const auto label : labels) {
    if (label >= static_cast<int64_t>(count.size())) count.resize(static_cast<size_t>(label) + 1, 0);
    ++count[static_cast<size_t>(label)];
  }
  std::int64_t smallest = wanted;
  for (const auto c : count)
    if (c > 0) smallest = std::min(smallest, c);
  return labels.empty() ? 0 : smallest;
}

std::vector<size_t> stratified_sample(const std::vector<int64_t>& labels, size_t count,
                                      std::uint64_t seed) {
  if (count >= labels.size()) {
    std::vector<size_t> all(labels.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
  // Spread each class's shuffled members evenly over [0, 1); any prefix of the merged order then
  // holds every class in proportion. Ties break on a seeded class order.
  const auto by_class = shuffled_by_class(labels, seed);
  const auto class_order = permutation(by_class.size(), derive_seed(seed, 0xc1a55));
  std::vector<std::tuple<double, size_t, size_t>> keyed;  // (position, class rank, index)
  keyed.reserve(labels.size());
  for (size_t c = 0; c < by_class.size(); ++c) {
    const auto& members = by_class[c];
    for (size_t k = 0; k < members.size(); ++k) {
      const double position = (static_cast<double>(k) + 0.5) / static_cast<double>(members.size());
      keyed.emplace_back(position, class_order[c], members[k]);
    }
  }
  std::partial_sort(keyed.begin(), keyed.begin() + static_cast<std::ptrdiff_t>(count), keyed.end());
  std::vector<size_t> chosen;
  chosen.reserve(count);
  for (size_t i = 0; i < count; ++i) chosen.push_back(std::get<2>(keyed[i]));
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace tlkit::data
