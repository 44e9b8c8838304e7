#include <tlkit/pipeline/logistic.h>

#include <ATen/ATen.h>
#include <torch/optim/lbfgs.h>

#include <tlkit/core/error.h>
#include <tlkit/core/threads.h>

namespace tlkit::pipeline {
namespace {

// rows x features x classes of one evaluation under which a fit runs on one thread (a product
// of ~8 MFLOP, a millisecond on a core): its operations are too short to share.
constexpr double kSmallWork = 4e6;

int threads_for(const at::Tensor& x, std::int64_t num_classes) {
  const double work = static_cast<double>(x.size(0)) * static_cast<double>(x.size(1)) *
                      static_cast<double>(num_classes);
  return work < kSmallWork ? 1 : 0;
}

void check_problem(const at::Tensor& x, const at::Tensor& y, std::int64_t num_classes) {
  TLKIT_CHECK(x.dim() == 2 && y.dim() == 1 && x.size(0) == y.size(0) && x.size(0) > 0,
              "logistic regression needs features [N, D] and labels [N]; got ", x.sizes(), " and ",
              y.sizes());
  TLKIT_CHECK(num_classes >= 2, "logistic regression needs at least 2 classes");
}

}  // namespace

LogisticFit fit_logistic(const at::Tensor& x, const at::Tensor& y, std::int64_t num_classes,
                         const LogisticOptions& options, const LogisticFit* start) {
  check_problem(x, y, num_classes);
  TLKIT_CHECK(options.l2 >= 0, "the L2 strength must not be negative");
  const ScopedThreads threads(threads_for(x, num_classes));
  const auto n = x.size(0);
  const auto d = x.size(1);
  // One parameter [C, D + 1]: the weight, then the bias as the last column.
  auto theta = at::zeros({num_classes, d + 1}, x.options());
  if (start && start->weight.defined()) {
    theta.narrow(1, 0, d).copy_(start->weight);
    theta.select(1, d).copy_(start->bias);
  }
  theta.requires_grad_();
  const auto targets = at::one_hot(y, num_classes).to(x.scalar_type()).div_(static_cast<double>(n));
  torch::optim::LBFGS lbfgs(std::vector<at::Tensor>{theta},
                            torch::optim::LBFGSOptions(1)
                                .max_iter(options.max_iter)
                                .tolerance_grad(options.tolerance_grad)
                                .tolerance_change(options.tolerance_change)
                                .history_size(options.history_size)
                                .line_search_fn("strong_wolfe"));
  std::int64_t evaluations = 0;
  lbfgs.step([&] {
    at::NoGradGuard no_grad;
    ++evaluations;
    const auto weight = theta.narrow(1, 0, d);
    const auto log_p = at::log_softmax(at::addmm(theta.select(1, d), x, weight.t()), 1);
    // loss = mean CE + l2 ||W||^2; d/dlogits = (softmax - onehot) / n.
    const auto loss = -(log_p * targets).sum() + options.l2 * weight.pow(2).sum();
    const auto g = log_p.exp_().div_(static_cast<double>(n)).sub_(targets);
    // dW = G^T X + 2 l2 W, db = sum_i G_i.
    theta.mutable_grad() =
        at::cat({at::addmm(weight, g.t(), x, 2.0 * options.l2), g.sum(0).unsqueeze(1)}, 1);
    return loss;
  });
  LogisticFit fit;
  const auto solved = theta.detach();
  fit.weight = solved.narrow(1, 0, d).contiguous();
  fit.bias = solved.select(1, d).contiguous();
  fit.evaluations = evaluations;
  const auto& state = lbfgs.state();
  const auto it = state.find(c10::guts::to_string(theta.unsafeGetTensorImpl()));
  if (it != state.end())
    fit.iterations = static_cast<const torch::optim::LBFGSParamState&>(*it->second).n_iter();
  return fit;
}

double logistic_objective(const LogisticFit& fit, const at::Tensor& x, const at::Tensor& y,
                          double l2) {
  at::NoGradGuard no_grad;
  const auto logits = at::addmm(fit.bias, x, fit.weight.t());
  return at::cross_entropy_loss(logits, y).item<double>() +
         l2 * fit.weight.pow(2).sum().item<double>();
}

RowSpace RowSpace::of(const at::Tensor& x) {
  TLKIT_CHECK(x.dim() == 2, "a row space needs features [N, D]; got ", x.sizes());
  RowSpace space;
  space.dim_ = x.size(1);
  if (x.size(0) >= x.size(1)) return space;
  // X^T = Q R: Q's columns are an orthonormal basis of the rows' span (of a larger space when the
  // rows are dependent, which holds the optimum as well).
  space.basis_ = std::get<0>(at::linalg_qr(x.t(), "reduced")).contiguous();
  space.dim_ = space.basis_.size(1);
  return space;
}

std::int64_t RowSpace::dim() const { return dim_; }

at::Tensor RowSpace::project(const at::Tensor& x) const {
  if (!reduces()) return x;
  return at::mm(x.to(basis_.scalar_type()), basis_);
}

LogisticFit RowSpace::lift(const LogisticFit& fit) const {
  if (!reduces()) return fit;
  LogisticFit lifted = fit;
  lifted.weight = at::mm(fit.weight, basis_.t());
  return lifted;
}

LogisticFit fit_logistic_reduced(const at::Tensor& x, const at::Tensor& y, std::int64_t num_classes,
                                 const LogisticOptions& options) {
  const auto space = RowSpace::of(x);
  return space.lift(fit_logistic(space.project(x), y, num_classes, options));
}

LogisticScore logistic_score(const LogisticFit& fit, const at::Tensor& x, const at::Tensor& y) {
  at::NoGradGuard no_grad;
  const auto logits = at::addmm(fit.bias, x, fit.weight.t());
  LogisticScore score;
  score.loss_sum = at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>();
  score.correct = logits.argmax(1).eq(y).sum().item<double>();
  score.examples = y.size(0);
  const auto classes = logits.size(1);
  score.confusion = at::bincount(y * classes + logits.argmax(1), {}, classes * classes)
                        .view({classes, classes})
                        .to(at::kLong);
  return score;
}

std::vector<LogisticPathStep> logistic_path(const at::Tensor& x, const at::Tensor& y,
                                            std::int64_t num_classes,
                                            const std::vector<double>& l2s,
                                            const at::Tensor& fold_of, std::int64_t folds,
                                            const at::Tensor& held_x, const at::Tensor& held_y,
                                            const LogisticOptions& options) {
  check_problem(x, y, num_classes);
  struct Part {
    at::Tensor train_x, train_y, score_x, score_y;
  };
  std::vector<Part> parts;
  if (fold_of.defined()) {
    TLKIT_CHECK(folds >= 2 && fold_of.size(0) == x.size(0),
                "an L2 path over folds needs at least 2 folds and one fold per row");
    for (std::int64_t f = 0; f < folds; ++f) {
      const auto held = fold_of.eq(f).nonzero().squeeze(1);
      const auto kept = fold_of.ne(f).nonzero().squeeze(1);
      parts.push_back({x.index_select(0, kept), y.index_select(0, kept), x.index_select(0, held),
                       y.index_select(0, held)});
    }
  } else {
    parts.push_back({x, y, held_x, held_y});
  }
  std::vector<LogisticPathStep> path;
  for (const double l2 : l2s) {
    LogisticPathStep step;
    step.l2 = l2;
    auto options_here = options;
    options_here.l2 = l2;
    for (size_t p = 0; p < parts.size(); ++p) {
      const auto* start = path.empty() ? nullptr : &path.back().fits[p];
      auto fit = fit_logistic(parts[p].train_x, parts[p].train_y, num_classes, options_here, start);
      step.iterations += fit.iterations;
      if (parts[p].score_x.defined() && parts[p].score_x.size(0) > 0)
        step.scores.push_back(logistic_score(fit, parts[p].score_x, parts[p].score_y));
      step.fits.push_back(std::move(fit));
    }
    path.push_back(std::move(step));
  }
  return path;
}

LogisticFit average_fit(const std::vector<LogisticFit>& fits) {
  TLKIT_CHECK(!fits.empty(), "no fits to average");
  LogisticFit mean;
  mean.weight = fits.front().weight.clone();
  mean.bias = fits.front().bias.clone();
  for (size_t i = 1; i < fits.size(); ++i) {
    mean.weight.add_(fits[i].weight);
    mean.bias.add_(fits[i].bias);
  }
  mean.weight.div_(static_cast<double>(fits.size()));
  mean.bias.div_(static_cast<double>(fits.size()));
  return mean;
}

}  // namespace tlkit::pipeline
