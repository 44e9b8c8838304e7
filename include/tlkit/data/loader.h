#pragma once
// DataLoader: batches of transformed samples, decoded on worker threads, delivered in order.
//
// Epoch e visits the samples in permutation(derive_seed(seed, e)) order (or 0..N-1 without
// shuffling), computed up front, so the order never depends on the number of threads. Sample i of
// epoch e is transformed with a generator seeded from (seed, e, i), so augmentation is reproducible
// too. Each worker builds whole batches; at most `prefetch` batches are claimed but not yet handed
// to the consumer (a bounded queue). Batches come out in order. Batch tensors are recycled once the
// consumer holds no reference to them (a fresh 38 MB batch costs thousands of page faults). An
// exception while loading is rethrown from next() as a tlkit::Error naming the batch and sample;
// an unreadable file is instead left out of its batch with a warning (skip_unreadable).
// The destructor stops the workers (between samples) and joins them. One consumer thread calls
// next()/epoch().

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>

#include <tlkit/data/dataset.h>
#include <tlkit/data/transforms.h>

namespace tlkit::data {

namespace detail {
class BatchBuffers;
}

struct LoaderOptions {
  size_t batch_size = 32;
  bool shuffle = true;
  // With shuffle: each epoch draws its samples with replacement, every class equally likely
  // (balanced_order in data/sampler.h, seeded from (seed, epoch)) instead of a permutation.
  bool balanced = false;
  std::uint64_t seed = 0;
  size_t workers = 2;      // decoding threads; 0 = load on the calling thread
  size_t prefetch = 0;     // batches loaded ahead of the consumer; 0 = 2 * workers
  bool drop_last = false;  // leave out a last, smaller batch
  size_t limit = 0;        // visit only the first `limit` samples of each epoch's order; 0 = all
  // Data parallelism: this process is shard `shard` of `shards` and visits only its part of each
  // epoch's order (shard_order). Training pads (every rank the same number of samples); evaluation
  // does not (every sample counted once when the ranks' sums are added).
  size_t shards = 1;
  size_t shard = 0;
  bool pad_shards = true;
  // A file that passed the dataset's scan but cannot be read or decoded (or decodes only in
  // part) is left out of its batch with one warning naming it, as the scan does; false: the
  // batch fails with an error naming it (--strict).
  bool skip_unreadable = true;
};

// The part of `order` that shard `shard` of `shards` visits, as torch's DistributedSampler: with
// `pad`, `order` is first extended by wrapping around to a multiple of `shards`; then every
// shards-th entry from position `shard`. The shards' batch k together hold the batch k of one
// process with `shards` times the batch size.
std::vector<size_t> shard_order(const std::vector<size_t>& order, size_t shards, size_t shard,
                                bool pad);

// One batch of decoded, transformed images (the trainer sees only images and labels: train::Batch).
struct ImageBatch {
  at::Tensor images;                 // B x (transformed shape), e.g. B x 3 x 224 x 224 float
  at::Tensor labels;                 // B, int64
  std::vector<std::string> sources;  // Sample::source of each row
  std::vector<size_t> indices;       // dataset index of each row
};

class DataLoader {
 public:
  // `transform` may be null: images are then batched as they come (they must share one shape).
  DataLoader(std::shared_ptr<const Dataset> dataset, std::shared_ptr<const Transform> transform,
             LoaderOptions options = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Starts epoch e (its own order and augmentation); work in flight for the old epoch is dropped.
  void epoch(size_t e);
  // The next batch of the current epoch, or nullopt at its end. Starts epoch 0 if none was started.
  std::optional<ImageBatch> next();

  size_t current_epoch() const { return epoch_; }
  size_t num_samples() const;  // samples per epoch (after limit; this shard's)
  size_t num_batches() const;  // batches per epoch
  std::vector<size_t> order(
      size_t epoch) const;  // dataset indices in the order epoch `epoch` visits them
  const LoaderOptions& options() const { return options_; }
  // Files left out of batches so far because they could not be read (each counted once).
  size_t skipped_unreadable() const;

  // Range-for over one epoch: `for (auto& batch : loader)`. begin() continues the current epoch,
  // or starts the next one when the current one is finished.
  class Iterator {
   public:
    Iterator() = default;
    explicit Iterator(DataLoader* loader) : loader_(loader), batch_(loader->next()) {}
    ImageBatch& operator*() { return *batch_; }
    ImageBatch* operator->() { return &*batch_; }
    Iterator& operator++() {
      batch_ = loader_->next();
      return *this;
    }
    bool operator==(const Iterator& other) const { return !batch_ && !other.batch_; }
    bool operator!=(const Iterator& other) const { return !(*this == other); }

   private:
    DataLoader* loader_ = nullptr;
    std::optional<ImageBatch> batch_;
  };
  Iterator begin();
  Iterator end() { return Iterator(); }

 private:
  struct Result {
    ImageBatch batch;
    std::exception_ptr error;
    bool cancelled = false;
  };
  Result build(const std::vector<size_t>& order, size_t batch, size_t epoch,
               size_t generation) const;
  void worker_loop();

  std::shared_ptr<const Dataset> dataset_;
  std::shared_ptr<const Transform> transform_;
  LoaderOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;   // workers wait for a batch to claim
  std::condition_variable batch_ready_;  // the consumer waits for the next batch
  std::atomic<bool> stop_{false};
  std::atomic<size_t> generation_{0};  // bumped by epoch(); stale work is dropped
  bool started_ = false;
  size_t epoch_ = 0;
  std::shared_ptr<const std::vector<size_t>> order_;
  std::vector<int64_t> labels_;  // the dataset's labels, for balanced sampling only
  size_t batches_ = 0, next_claim_ = 0, next_deliver_ = 0;
  std::map<size_t, Result> ready_;
  std::unique_ptr<detail::BatchBuffers> buffers_;  // batch tensors the consumer has let go of
  std::vector<std::thread> workers_;
  mutable std::mutex skipped_mutex_;
  mutable std::map<std::string, std::string> skipped_;  // source -> why, reported once
};

}  // namespace tlkit::data
