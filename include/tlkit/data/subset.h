#pragma once
// Subsets of a dataset, and the stratified, seeded index selections behind val splits and limits.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tlkit/data/dataset.h>

namespace tlkit::data {

// A view of some samples of another dataset (indices into it, in the order given).
class Subset : public Dataset {
 public:
  // `name` describes the view in describe(), e.g. "val split 0.2".
  Subset(std::shared_ptr<const Dataset> parent, std::vector<size_t> indices, std::string name);

  size_t size() const override { return indices_.size(); }
  Sample get(size_t index) const override;
  std::string source(size_t index) const override;
  const std::vector<std::string>& classes() const override { return parent_->classes(); }
  std::vector<int64_t> labels() const override { return labels_; }
  std::string describe() const override;
  size_t skipped() const override { return parent_->skipped(); }
  const std::vector<size_t>& indices() const { return indices_; }

 private:
  std::shared_ptr<const Dataset> parent_;
  std::vector<size_t> indices_;
  std::vector<int64_t> labels_;
  std::string name_;
};

// Several datasets with the same classes as one: the samples of the first, then the second, ...
// (finetune pools train and val into every labelled image for cross-validation).
class Concat : public Dataset {
 public:
  Concat(std::vector<std::shared_ptr<const Dataset>> parts, std::string name);

  size_t size() const override { return labels_.size(); }
  Sample get(size_t index) const override;
  std::string source(size_t index) const override;
  const std::vector<std::string>& classes() const override { return parts_.front()->classes(); }
  std::vector<int64_t> labels() const override { return labels_; }
  std::string describe() const override;
  size_t skipped() const override;

 private:
  std::pair<const Dataset*, size_t> locate(size_t index) const;
  std::vector<std::shared_ptr<const Dataset>> parts_;
  std::vector<size_t> starts_;
  std::vector<int64_t> labels_;
  std::string name_;
};

struct IndexSplit {
  std::vector<size_t> train;  // ascending
  std::vector<size_t> val;    // ascending
};

// Stratified split: for each class c with n_c samples, round(n_c * fraction) of them (chosen by a
// seeded shuffle within the class, at most n_c - 1 so no class leaves train) go to val.
// Same labels + fraction + seed -> same split. fraction must be in [0, 1).
IndexSplit stratified_split(const std::vector<int64_t>& labels, double fraction,
                            std::uint64_t seed);

// Stratified k-fold cross-validation: the fold (0 .. folds-1) of each sample. Within each class a
// seeded shuffle, then round robin from a rotating start, so each fold holds every class's samples
// as evenly as integers allow and the folds' sizes differ by at most one. Same labels + folds +
// seed -> same folds. Every fold trains on every class when `folds` <= the smallest class.
std::vector<std::int64_t> stratified_folds(const std::vector<int64_t>& labels, std::int64_t folds,
                                           std::uint64_t seed);

// The number of folds k-fold cross-validation of `labels` can use: `wanted`, at most the smallest
// class's count (a class with fewer samples than folds would be missing from some fold's
// training); below 2 there is no cross-validation.
std::int64_t usable_folds(const std::vector<int64_t>& labels, std::int64_t wanted);

// `count` indices chosen so every class keeps its share (as near as integers allow), seeded;
// returned ascending. count >= labels.size() returns every index.
std::vector<size_t> stratified_sample(const std::vector<int64_t>& labels, size_t count,
                                      std::uint64_t seed);

}  // namespace tlkit::data
