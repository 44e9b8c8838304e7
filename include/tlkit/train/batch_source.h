#pragma once
// BatchSource: where the trainer's batches come from, one epoch at a time. The order of an epoch
// depends only on (seed, epoch), so a resumed run sees exactly the batches an uninterrupted one
// would.

#include <cstdint>
#include <memory>
#include <optional>

#include <ATen/core/Tensor.h>

namespace tlkit::train {

struct Batch {
  at::Tensor inputs;   // [B, ...] float
  at::Tensor targets;  // [B] int64 class indices
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual void start_epoch(std::int64_t epoch) = 0;
  virtual std::optional<Batch> next() = 0;
  virtual std::int64_t batches_per_epoch() const = 0;
  virtual std::int64_t size() const = 0;  // examples per epoch (this process's share)
  // Data parallelism: how many processes share each epoch (1 = this process sees all of it). The
  // trainer averages gradients over the ranks, and evaluation adds their sums, only for a source
  // split between them.
  virtual std::int64_t shards() const { return 1; }
  // Passes over the next `batches` batches of the epoch (a resume in the middle of an epoch).
  virtual void skip(std::int64_t batches) {
    for (std::int64_t i = 0; i < batches && next(); ++i) {
    }
  }
};

// Batches from tensors in memory (e.g. cached features), reshuffled each epoch from (seed, epoch).
class TensorBatchSource : public BatchSource {
 public:
  TensorBatchSource(at::Tensor inputs, at::Tensor targets, std::int64_t batch_size, bool shuffle,
                    std::uint64_t seed = 0, bool drop_last = false);
  void start_epoch(std::int64_t epoch) override;
  std::optional<Batch> next() override;
  std::int64_t batches_per_epoch() const override;
  std::int64_t size() const override { return order_.size(0); }
  std::int64_t shards() const override { return shards_; }
  // Visit only shard `shard` of `shards` of each epoch's order (data::shard_order's rule).
  void set_shard(std::int64_t shards, std::int64_t shard, bool pad);

 private:
  at::Tensor inputs_, targets_, order_;
  std::int64_t batch_size_;
  bool shuffle_, drop_last_;
  std::uint64_t seed_;
  std::int64_t position_ = 0;
  std::int64_t shards_ = 1, shard_ = 0;
  bool pad_ = true;
};

// The first `batches` batches of epoch 0 of `inner`, every epoch: the "overfit a tiny subset
// first" check (Karpathy 2019, "A Recipe for Training Neural Networks") (a correct model and loop reach ~100% training accuracy on it).
class RepeatFirstBatches : public BatchSource {
 public:
  RepeatFirstBatches(std::shared_ptr<BatchSource> inner, std::int64_t batches);
  void start_epoch(std::int64_t epoch) override;
  std::optional<Batch> next() override;
  std::int64_t batches_per_epoch() const override {
    return static_cast<std::int64_t>(cache_.size());
  }
  std::int64_t size() const override;
  std::int64_t shards() const override { return shards_; }

 private:
  std::vector<Batch> cache_;
  std::int64_t shards_ = 1;
  size_t position_ = 0;
};

// A permutation of [0, n) determined by (seed, epoch) alone.
at::Tensor epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

}  // namespace tlkit::train
