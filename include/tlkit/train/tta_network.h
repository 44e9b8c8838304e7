#pragma once
// The prediction from test-time augmentation views (data/tta.h): a batch [B, V, C, H, W] goes
// through the model as B·V images and the V softmax outputs of each image are averaged,
//   log p(x) = log(1/V · Σ_v softmax(f(view_v(x)))),
// returned as log-probabilities so that softmax of the result is p(x) exactly and tlkit's losses
// and metrics apply unchanged (as for ensembles, pipeline/ensemble.h).

#include <functional>
#include <utility>

#include <tlkit/train/network.h>

namespace tlkit::train {

// [B, V, ...] views: the log of the mean softmax over V. A [B, ...] batch of 4 or fewer
// dimensions is one view per image: log_softmax(forward(x)). Computed in float64.
torch::Tensor mean_softmax_over_views(
    const torch::Tensor& views, const std::function<torch::Tensor(const torch::Tensor&)>& forward);

// A network whose forward takes [B, V, C, H, W] view batches (see above); everything else is
// the wrapped network's (train mode, parameters, state), so snapshot ensembles work through it.
class TtaNetwork : public Network {
 public:
  explicit TtaNetwork(Network& inner) : inner_(inner) {}
  torch::Tensor forward(const torch::Tensor& input) override;
  void train(bool on) override { inner_.train(on); }
  bool is_training() const override { return inner_.is_training(); }
  std::vector<torch::Tensor> parameters() const override { return inner_.parameters(); }
  NamedTensors named_state() const override { return inner_.named_state(); }
  void to(const torch::Device& device) override { inner_.to(device); }

 private:
  Network& inner_;
};

}  // namespace tlkit::train
