#include <tlkit/train/ema_callback.h>

#include <tlkit/train/trainer.h>

namespace tlkit::train {

EmaCallback::EmaCallback(Network& network, BatchSource* val, std::int64_t num_classes,
                         EMAOptions options)
    : val_(val), num_classes_(num_classes) {
  std::vector<at::Tensor> parameters = network.parameters();
  std::vector<at::Tensor> buffers;
  const auto state = network.named_state();  // parameters first, then buffers
  for (size_t i = parameters.size(); i < state.size(); ++i) buffers.push_back(state[i].second);
  ema_ = std::make_unique<ExponentialMovingAverage>(std::move(parameters), std::move(buffers),
                                                    options);
}

void EmaCallback::on_batch_end(TrainContext&) { ema_->update(); }

void EmaCallback::on_validation_end(TrainContext& context) {
  if (!val_ || context.validation_skipped) return;
  ExponentialMovingAverage::SwapGuard averaged(*ema_);
  const auto evaluation =
      evaluate(context.network, *val_, num_classes_, context.trainer.options().device);
  context.metrics.set("ema_val_loss", evaluation.loss);
  context.metrics.set("ema_val_acc", evaluation.accuracy);
  if (context.trainer.options().monitor == "val_balanced_acc")
    context.metrics.set("ema_val_balanced_acc", evaluation.balanced_accuracy());
}

void EmaCallback::save(torch::serialize::OutputArchive& archive) const { ema_->save(archive); }
void EmaCallback::load(torch::serialize::InputArchive& archive) { ema_->load(archive); }

}  // namespace tlkit::train
