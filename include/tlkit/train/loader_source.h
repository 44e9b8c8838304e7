#pragma once
// LoaderSource: a data::DataLoader as the trainer's BatchSource (images + labels per batch; the
// loader's order depends only on (seed, epoch), so resumed runs see the same batches).

#include <memory>

#include <tlkit/data/loader.h>
#include <tlkit/train/batch_source.h>

namespace tlkit::train {

class LoaderSource : public BatchSource {
 public:
  explicit LoaderSource(std::shared_ptr<data::DataLoader> loader) : loader_(std::move(loader)) {}
  void start_epoch(std::int64_t epoch) override { loader_->epoch(static_cast<size_t>(epoch)); }
  std::optional<Batch> next() override {
    auto batch = loader_->next();
    if (!batch) return std::nullopt;
    return Batch{batch->images, batch->labels};
  }
  std::int64_t batches_per_epoch() const override {
    return static_cast<std::int64_t>(loader_->num_batches());
  }
  std::int64_t size() const override { return static_cast<std::int64_t>(loader_->num_samples()); }
  std::int64_t shards() const override {
    return static_cast<std::int64_t>(loader_->options().shards);
  }
  data::DataLoader& loader() { return *loader_; }

 private:
  std::shared_ptr<data::DataLoader> loader_;
};

}  // namespace tlkit::train
