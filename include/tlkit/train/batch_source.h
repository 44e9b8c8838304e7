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
  virtual std::int64_t size() const = 0;  // examples per epoch
};

// Batches from tensors in memory (e.g. cached features), reshuffled each epoch from (seed, epoch).
class TensorBatchSource : public BatchSource {
 public:
  TensorBatchSource(at::Tensor inputs, at::Tensor targets, std::int64_t batch_size, bool shuffle,
                    std::uint64_t seed = 0, bool drop_last = false);
  void start_epoch(std::int64_t epoch) override;
  std::optional<Batch> next() override;
  std::int64_t batches_per_epoch() const override;
  std::int64_t size() const override { return inputs_.size(0); }

 private:
  at::Tensor inputs_, targets_, order_;
  std::int64_t batch_size_;
  bool shuffle_, drop_last_;
  std::uint64_t seed_;
  std::int64_t position_ = 0;
};

// The first `batches` batches of epoch 0 of `inner`, every epoch: the course's "overfit a tiny
// subset first" check (a correct model and loop reach ~100% training accuracy on it).
class RepeatFirstBatches : public BatchSource {
 public:
  RepeatFirstBatches(std::shared_ptr<BatchSource> inner, std::int64_t batches);
  void start_epoch(std::int64_t epoch) override;
  std::optional<Batch> next() override;
  std::int64_t batches_per_epoch() const override {
    return static_cast<std::int64_t>(cache_.size());
  }
  std::int64_t size() const override;

 private:
  std::vector<Batch> cache_;
  size_t position_ = 0;
};

// A permutation of [0, n) determined by (seed, epoch) alone.
at::Tensor epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

}  // namespace tlkit::train
