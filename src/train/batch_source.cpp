#include <tlkit/train/batch_source.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <tlkit/core/error.h>

namespace tlkit::train {

at::Tensor epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  // A private generator: the global RNG (dropout, augmentation) is not disturbed.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL +
                                                            static_cast<std::uint64_t>(epoch));
  return at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
}

TensorBatchSource::TensorBatchSource(at::Tensor inputs, at::Tensor targets, std::int64_t batch_size,
                                     bool shuffle, std::uint64_t seed, bool drop_last)
    : inputs_(std::move(inputs)),
      targets_(std::move(targets)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      drop_last_(drop_last),
      seed_(seed) {
  TLKIT_CHECK(batch_size_ > 0, "batch size must be positive, got ", batch_size_);
  TLKIT_CHECK(inputs_.dim() >= 1 && targets_.dim() == 1 && inputs_.size(0) == targets_.size(0),
              "inputs and targets disagree: ", inputs_.sizes(), " vs ", targets_.sizes());
  TLKIT_CHECK(inputs_.size(0) > 0, "no examples to train on");
  start_epoch(0);
}

void TensorBatchSource::start_epoch(std::int64_t epoch) {
  order_ = shuffle_ ? epoch_permutation(inputs_.size(0), seed_, epoch)
                    : at::arange(inputs_.size(0), at::TensorOptions().dtype(at::kLong));
  if (shards_ > 1) {
    const auto n = order_.size(0);
    const auto total = pad_ ? (n + shards_ - 1) / shards_ * shards_ : n;
    auto positions = at::arange(shard_, total, shards_, at::TensorOptions().dtype(at::kLong));
    order_ = order_.index_select(0, positions.remainder(n));
  }
  position_ = 0;
}

void TensorBatchSource::set_shard(std::int64_t shards, std::int64_t shard, bool pad) {
  TLKIT_CHECK(shards >= 1 && shard >= 0 && shard < shards, "shard ", shard, " of ", shards,
              " does not exist");
  shards_ = shards;
  shard_ = shard;
  pad_ = pad;
  start_epoch(0);
}

std::int64_t TensorBatchSource::batches_per_epoch() const {
  const auto n = order_.size(0);
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

std::optional<Batch> TensorBatchSource::next() {
  const auto n = order_.size(0);
  const auto end = std::min(position_ + batch_size_, n);
  if (position_ >= n || (drop_last_ && end - position_ < batch_size_)) return std::nullopt;
  auto index = order_.slice(0, position_, end).to(inputs_.device());
  position_ = end;
  return Batch{inputs_.index_select(0, index), targets_.index_select(0, index)};
}

RepeatFirstBatches::RepeatFirstBatches(std::shared_ptr<BatchSource> inner, std::int64_t batches)
    : shards_(inner->shards()) {
  TLKIT_CHECK(batches > 0, "--overfit-batches must be positive, got ", batches);
  inner->start_epoch(0);
  while (static_cast<std::int64_t>(cache_.size()) < batches) {
    auto batch = inner->next();
    if (!batch) break;
    cache_.push_back(std::move(*batch));
  }
  TLKIT_CHECK(!cache_.empty(), "the training data yielded no batch");
}

void RepeatFirstBatches::start_epoch(std::int64_t) { position_ = 0; }

std::optional<Batch> RepeatFirstBatches::next() {
  if (position_ >= cache_.size()) return std::nullopt;
  return cache_[position_++];
}

std::int64_t RepeatFirstBatches::size() const {
  std::int64_t n = 0;
  for (const auto& batch : cache_) n += batch.targets.size(0);
  return n;
}

}  // namespace tlkit::train
