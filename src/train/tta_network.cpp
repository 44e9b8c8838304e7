#include <tlkit/train/tta_network.h>

#include <cmath>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>

namespace tlkit::train {

torch::Tensor mean_softmax_over_views(
    const torch::Tensor& views, const std::function<torch::Tensor(const torch::Tensor&)>& forward) {
  if (views.dim() <= 4) return at::log_softmax(forward(views).to(at::kDouble), 1);
  const auto batch = views.size(0), count = views.size(1);
  TLKIT_CHECK(batch > 0 && count > 0, "an empty batch of views: ", views.sizes());
  auto flat = views.reshape([&] {
    std::vector<std::int64_t> sizes{batch * count};
    sizes.insert(sizes.end(), views.sizes().begin() + 2, views.sizes().end());
    return sizes;
  }());
  const auto log_p = at::log_softmax(forward(flat).to(at::kDouble), 1);
  // log mean_v p_v = logsumexp_v(log p_v) - log V
  return at::logsumexp(log_p.view({batch, count, log_p.size(1)}), 1) -
         std::log(static_cast<double>(count));
}

torch::Tensor TtaNetwork::forward(const torch::Tensor& input) {
  return mean_softmax_over_views(input,
                                 [this](const torch::Tensor& x) { return inner_.forward(x); });
}

}  // namespace tlkit::train
