#pragma once
// EmaCallback: keeps a Polyak / EMA average of the network's weights during training (updated
// after every optimizer step) and evaluates the averaged weights beside the raw ones at the end of
// each epoch, adding ema_val_loss / ema_val_acc to the epoch's metrics. Its state travels in
// checkpoints, so a resumed run continues the same average.

#include <memory>

#include <tlkit/train/callback.h>
#include <tlkit/train/ema.h>

namespace tlkit::train {

class EmaCallback : public Callback {
 public:
  // val: where to evaluate the averaged weights (may be null: then only the average is kept).
  EmaCallback(Network& network, BatchSource* val, std::int64_t num_classes,
              EMAOptions options = {});
  std::string name() const override { return "ema"; }
  void on_batch_end(TrainContext& context) override;
  void on_validation_end(TrainContext& context) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  ExponentialMovingAverage& average() { return *ema_; }

 private:
  std::unique_ptr<ExponentialMovingAverage> ema_;
  BatchSource* val_;
  std::int64_t num_classes_;
};

}  // namespace tlkit::train
