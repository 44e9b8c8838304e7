#include <tlkit/data/loader.h>

#include <algorithm>
#include <numeric>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/random.h>
#include <tlkit/data/sampler.h>

namespace tlkit::data {
namespace {

std::string shape_text(const at::Tensor& tensor) {
  std::ostringstream out;
  out << tensor.sizes() << " " << tensor.scalar_type();
  return out.str();
}

}  // namespace

namespace detail {

// A few batch-sized tensors, handed out again once nobody but the pool refers to them (neither the
// tensor nor its storage: views keep a batch alive).
class BatchBuffers {
 public:
  explicit BatchBuffers(size_t capacity) : capacity_(capacity) {}

  at::Tensor take(at::IntArrayRef sizes, at::ScalarType dtype) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& buffer : buffers_) {
      if (free(buffer) && buffer.sizes() == sizes && buffer.scalar_type() == dtype) return buffer;
    }
    auto fresh = at::empty(sizes, at::TensorOptions().dtype(dtype));
    if (buffers_.size() < capacity_) {
      buffers_.push_back(fresh);
    } else {
      auto unused = std::find_if(buffers_.begin(), buffers_.end(),
                                 [](const at::Tensor& b) { return free(b); });
      if (unused != buffers_.end()) *unused = fresh;
    }
    return fresh;
  }

 private:
  static bool free(const at::Tensor& buffer) {
    return buffer.use_count() == 1 && buffer.storage().use_count() == 1;
  }

  std::mutex mutex_;
  size_t capacity_;
  std::vector<at::Tensor> buffers_;
};

}  // namespace detail

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset,
                       std::shared_ptr<const Transform> transform, LoaderOptions options)
    : dataset_(std::move(dataset)), transform_(std::move(transform)), options_(options) {
  TLKIT_CHECK(dataset_ != nullptr, "DataLoader needs a dataset; got a null pointer");
  TLKIT_CHECK(options_.batch_size > 0, "batch size must be at least 1");
  TLKIT_CHECK(dataset_->size() > 0, "cannot load from an empty dataset: ", dataset_->describe());
  TLKIT_CHECK(options_.shards >= 1 && options_.shard < options_.shards, "loader shard ",
              options_.shard, " of ", options_.shards, " does not exist");
  // An evaluation shard may be empty (fewer samples than ranks); the ranks' sums still add up.
  TLKIT_CHECK(num_batches() > 0 || (options_.shards > 1 && !options_.pad_shards),
              dataset_->describe(), " has ", num_samples(), " samples, fewer than one batch of ",
              options_.batch_size, " with drop_last; lower the batch size or keep the last batch");
  if (options_.prefetch == 0) options_.prefetch = std::max<size_t>(2 * options_.workers, 1);
  if (options_.shuffle && options_.balanced) labels_ = dataset_->labels();
  buffers_ = std::make_unique<detail::BatchBuffers>(options_.prefetch + options_.workers + 2);
  for (size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

std::vector<size_t> shard_order(const std::vector<size_t>& order, size_t shards, size_t shard,
                                bool pad) {
  TLKIT_CHECK(shards >= 1 && shard < shards, "shard ", shard, " of ", shards, " does not exist");
  if (shards == 1) return order;
  std::vector<size_t> part;
  const size_t total =
      pad && !order.empty() ? (order.size() + shards - 1) / shards * shards : order.size();
  part.reserve(total / shards + 1);
  for (size_t position = shard; position < total; position += shards)
    part.push_back(order[position % order.size()]);
  return part;
}

size_t DataLoader::num_samples() const {
  const size_t n = dataset_->size();
  const size_t all = options_.limit > 0 ? std::min(n, options_.limit) : n;
  if (options_.shards <= 1) return all;
  if (options_.pad_shards) return (all + options_.shards - 1) / options_.shards;
  return all / options_.shards + (options_.shard < all % options_.shards ? 1 : 0);
}

size_t DataLoader::num_batches() const {
  const size_t n = num_samples(), size = options_.batch_size;
  return options_.drop_last ? n / size : (n + size - 1) / size;
}

std::vector<size_t> DataLoader::order(size_t epoch) const {
  std::vector<size_t> indices;
  if (options_.shuffle && options_.balanced) {
    // Its own stream (key 1): not the permutation's numbers reused.
    indices = balanced_order(labels_, derive_seed(options_.seed, epoch, 1));
  } else if (options_.shuffle) {
    indices = permutation(dataset_->size(), derive_seed(options_.seed, epoch));
  } else {
    indices.resize(dataset_->size());
    std::iota(indices.begin(), indices.end(), size_t{0});
  }
  indices.resize(options_.limit > 0 ? std::min(indices.size(), options_.limit) : indices.size());
  return shard_order(indices, options_.shards, options_.shard, options_.pad_shards);
}

void DataLoader::epoch(size_t e) {
  auto order = std::make_shared<const std::vector<size_t>>(this->order(e));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    started_ = true;
    epoch_ = e;
    order_ = std::move(order);
    batches_ = num_batches();
    next_claim_ = next_deliver_ = 0;
    ready_.clear();
  }
  work_ready_.notify_all();
}

DataLoader::Iterator DataLoader::begin() {
  bool finished = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished = started_ && next_deliver_ >= batches_;
  }
  if (!started_)
    epoch(epoch_);
  else if (finished)
    epoch(epoch_ + 1);
  return Iterator(this);
}

std::optional<ImageBatch> DataLoader::next() {
  if (!started_) epoch(epoch_);
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_deliver_ >= batches_) return std::nullopt;
  Result result;
  if (workers_.empty()) {
    const auto order = order_;
    const size_t batch = next_deliver_++, epoch = epoch_, generation = generation_;
    lock.unlock();
    result = build(*order, batch, epoch, generation);
  } else {
    batch_ready_.wait(lock, [this] { return ready_.count(next_deliver_) > 0; });
    auto node = ready_.extract(next_deliver_++);
    lock.unlock();
    work_ready_.notify_all();
    result = std::move(node.mapped());
  }
  if (result.error) std::rethrow_exception(result.error);
  return std::move(result.batch);
}

void DataLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [this] {
      return stop_ || (next_claim_ < batches_ && next_claim_ < next_deliver_ + options_.prefetch);
    });
    if (stop_) return;
    const auto order = order_;
    const size_t batch = next_claim_++, epoch = epoch_, generation = generation_;
    lock.unlock();
    Result result = build(*order, batch, epoch, generation);
    lock.lock();
    if (!result.cancelled && generation == generation_) {
      ready_.emplace(batch, std::move(result));
      batch_ready_.notify_all();
    }
  }
}

DataLoader::Result DataLoader::build(const std::vector<size_t>& order, size_t batch, size_t epoch,
                                     size_t generation) const {
  Result result;
  const size_t begin = batch * options_.batch_size;
  const size_t end = std::min(begin + options_.batch_size, order.size());
  at::Tensor images;
  std::vector<int64_t> labels;
  std::int64_t kept = 0;
  for (size_t position = begin; position < end; ++position) {
    if (stop_ || generation != generation_) {
      result.cancelled = true;
      return result;
    }
    const size_t index = order[position];
    std::string source;
    try {
      Sample sample;
      try {
        sample = dataset_->get(index);
      } catch (const Error& e) {
        if (!options_.skip_unreadable) throw;
        // The file passed the scan but does not decode: left out like a scan failure.
        try {
          source = dataset_->source(index);
        } catch (const std::exception&) {
          source = "sample " + std::to_string(index);
        }
        std::lock_guard<std::mutex> lock(skipped_mutex_);
        if (skipped_.emplace(source, e.what()).second)
          logger()->warn(
              "skipping '{}': {} (it passed the folder scan but cannot be decoded; "
              "run with --strict to stop instead)",
              source, e.what());
        continue;
      }
      source = sample.source;
      // Balanced sampling draws an image more than once per epoch: each draw gets its own
      // augmentation, keyed by its place in the whole epoch's order (the same on any number of
      // shards: this shard's position k is the padded order's k x shards + shard).
      std::mt19937_64 rng(options_.shuffle && options_.balanced
                              ? derive_seed(derive_seed(options_.seed, 2), epoch,
                                            position * options_.shards + options_.shard)
                              : derive_seed(options_.seed, epoch, index));
      at::Tensor image =
          transform_ ? (*transform_)(std::move(sample.image), rng) : std::move(sample.image);
      if (!images.defined()) {
        std::vector<int64_t> sizes = {static_cast<int64_t>(end - begin)};
        sizes.insert(sizes.end(), image.sizes().begin(), image.sizes().end());
        images = buffers_->take(sizes, image.scalar_type());
      }
      TLKIT_CHECK(
          images[0].sizes() == image.sizes() && images.scalar_type() == image.scalar_type(),
          "its image is ", shape_text(image), " but the batch's first is ", shape_text(images[0]),
          "; use a transform that gives every image one size (e.g. eval_transform(256, 224))");
      images[kept++].copy_(image);
      labels.push_back(sample.label);
      result.batch.sources.push_back(std::move(sample.source));
      result.batch.indices.push_back(index);
    } catch (const std::exception& e) {
      result.error = std::make_exception_ptr(
          Error(tlkit::detail::concat("loading batch ", batch, " of epoch ", epoch, ", sample ",
                                      index, source.empty() ? std::string() : " ('" + source + "')",
                                      " of ", dataset_->describe(), ": ", e.what())));
      return result;
    }
  }
  if (kept == 0) {
    result.error = std::make_exception_ptr(Error(tlkit::detail::concat(
        "loading batch ", batch, " of epoch ", epoch, " of ", dataset_->describe(),
        ": none of its ", end - begin, " images could be read (see the warnings above)")));
    return result;
  }
  result.batch.images =
      kept == static_cast<std::int64_t>(end - begin) ? images : images.narrow(0, 0, kept);
  result.batch.labels = at::tensor(labels, at::kLong);
  return result;
}

size_t DataLoader::skipped_unreadable() const {
  std::lock_guard<std::mutex> lock(skipped_mutex_);
  return skipped_.size();
}

}  // namespace tlkit::data
