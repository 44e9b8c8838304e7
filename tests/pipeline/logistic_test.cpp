// The exact head's logistic regression: against Python (torch.optim.LBFGS polished by Newton,
// scripts/gen_logistic_reference.py), the row-space solution against the primal one, and the
// warm-started L2 path against cold fits.
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/pipeline/logistic.h>

#include "support/test_support.h"

namespace tlkit::pipeline {
namespace {

const c10::impl::GenericDict& reference() {
  static const c10::impl::GenericDict dict = [] {
    const auto path = test::test_data_dir() / "logistic_reference.pt";
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("missing " + path.string() + "; build target tlkit_reference_data");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return torch::pickle_load(bytes).toGenericDict();
  }();
  return dict;
}

struct Case {
  at::Tensor x, y, weight, bias;
  std::int64_t classes = 0;
  double l2 = 0, objective = 0;
};

Case reference_case(const std::string& name) {
  const auto at = [&](const std::string& key) {
    return reference().at("case/" + name + "/" + key);
  };
  return {at("x").toTensor(),        at("y").toTensor(),    at("weight").toTensor(),
          at("bias").toTensor(),     at("classes").toInt(), at("l2").toDouble(),
          at("objective").toDouble()};
}

// Max-norm of the difference over max-norm of the reference.
double relative_gap(const at::Tensor& value, const at::Tensor& reference) {
  return (value - reference).abs().max().item<double>() / reference.abs().max().item<double>();
}

// Solved to the reference's accuracy: the equality checks below are about the problem solved, not
// about where the default tolerances stop.
LogisticOptions tight(double l2) {
  LogisticOptions options;
  options.l2 = l2;
  options.max_iter = 5000;
  options.tolerance_grad = 1e-11;
  options.tolerance_change = 1e-16;
  return options;
}

// Stated tolerances, relative in max-norm: a tight solve against the reference (float64); the
// weakly penalised wide case is ill-conditioned (its objective is flat to 1e-15 over a wider set).
constexpr double kSolutionTolerance = 2e-5;

const std::vector<std::string> kCases{"wide_strong", "wide_weak", "tall"};

TEST(Logistic, PrimalFitMatchesPythonReference) {
  for (const auto& name : kCases) {
    SCOPED_TRACE(name);
    const auto c = reference_case(name);
    const auto fit = fit_logistic(c.x, c.y, c.classes, tight(c.l2));
    EXPECT_LT(relative_gap(fit.weight, c.weight), kSolutionTolerance);
    EXPECT_LT(relative_gap(fit.bias, c.bias), kSolutionTolerance);
    EXPECT_NEAR(logistic_objective(fit, c.x, c.y, c.l2), c.objective, 1e-11 * c.objective);
  }
}

TEST(Logistic, RowSpaceFitEqualsPrimalFitAndReference) {
  for (const auto& name : kCases) {
    SCOPED_TRACE(name);
    const auto c = reference_case(name);
    const auto space = RowSpace::of(c.x);
    EXPECT_EQ(space.reduces(), c.x.size(0) < c.x.size(1));
    EXPECT_EQ(space.dim(), std::min(c.x.size(0), c.x.size(1)));
    const auto primal = fit_logistic(c.x, c.y, c.classes, tight(c.l2));
    const auto reduced = fit_logistic_reduced(c.x, c.y, c.classes, tight(c.l2));
    EXPECT_LT(relative_gap(reduced.weight, primal.weight), kSolutionTolerance);
    EXPECT_LT(relative_gap(reduced.bias, primal.bias), kSolutionTolerance);
    EXPECT_LT(relative_gap(reduced.weight, c.weight), kSolutionTolerance);
    EXPECT_LT(relative_gap(reduced.bias, c.bias), kSolutionTolerance);
  }
}

TEST(Logistic, DefaultTolerancesReachTheOptimalObjective) {
  for (const auto& name : kCases) {
    SCOPED_TRACE(name);
    const auto c = reference_case(name);
    LogisticOptions options;
    options.l2 = c.l2;
    const auto fit = fit_logistic_reduced(c.x, c.y, c.classes, options);
    EXPECT_LT(fit.iterations, options.max_iter);
    EXPECT_NEAR(logistic_objective(fit, c.x, c.y, c.l2), c.objective, 1e-6 * c.objective);
    EXPECT_LT(relative_gap(fit.weight, c.weight), 1e-3);
  }
}

TEST(Logistic, WarmStartedPathOverFoldsEqualsColdFitsInThePrimal) {
  const auto c = reference_case("wide_strong");
  const std::int64_t folds = 3;
  // Every class in every fold (label = row % 3), as stratified folds have them: a class missing
  // from a fold's training rows would send its unpenalised bias to minus infinity.
  const auto fold_of = torch::arange(c.x.size(0)).div(3, "floor") % folds;
  const std::vector<double> l2s{1.0, 1e-1, 1e-2};
  // One basis of every row serves every fold.
  const auto space = RowSpace::of(c.x);
  auto options = tight(0);
  const auto path =
      logistic_path(space.project(c.x), c.y, c.classes, l2s, fold_of, folds, {}, {}, options);
  ASSERT_EQ(path.size(), l2s.size());
  for (size_t s = 0; s < l2s.size(); ++s) {
    ASSERT_EQ(path[s].fits.size(), static_cast<size_t>(folds));
    ASSERT_EQ(path[s].scores.size(), static_cast<size_t>(folds));
    for (std::int64_t f = 0; f < folds; ++f) {
      SCOPED_TRACE("l2 " + std::to_string(l2s[s]) + ", fold " + std::to_string(f));
      const auto kept = fold_of.ne(f).nonzero().squeeze(1);
      const auto held = fold_of.eq(f).nonzero().squeeze(1);
      options.l2 = l2s[s];
      const auto cold =
          fit_logistic(c.x.index_select(0, kept), c.y.index_select(0, kept), c.classes, options);
      const auto lifted = space.lift(path[s].fits[f]);
      EXPECT_LT(relative_gap(lifted.weight, cold.weight), kSolutionTolerance);
      EXPECT_LT(relative_gap(lifted.bias, cold.bias), kSolutionTolerance);
      const auto score = logistic_score(cold, c.x.index_select(0, held), c.y.index_select(0, held));
      EXPECT_NEAR(path[s].scores[f].loss_sum, score.loss_sum, 1e-6 * score.loss_sum);
      EXPECT_EQ(path[s].scores[f].examples, held.size(0));
    }
  }
}

TEST(Logistic, PathWithoutFoldsScoresTheHeldOutSet) {
  const auto c = reference_case("tall");
  const auto held_x = c.x.slice(0, 0, 10);
  const auto held_y = c.y.slice(0, 0, 10);
  const auto path =
      logistic_path(c.x, c.y, c.classes, {1e-1, 1e-3}, {}, 0, held_x, held_y, tight(0));
  ASSERT_EQ(path.size(), 2u);
  ASSERT_EQ(path[1].fits.size(), 1u);
  ASSERT_EQ(path[1].scores.size(), 1u);
  EXPECT_EQ(path[1].scores[0].examples, 10);
  EXPECT_LT(relative_gap(path[1].fits[0].weight, c.weight), kSolutionTolerance);
  const auto mean = average_fit({path[0].fits[0], path[1].fits[0]});
  EXPECT_TRUE(torch::allclose(mean.weight, (path[0].fits[0].weight + path[1].fits[0].weight) / 2));
}

TEST(Logistic, BadInputsAreErrors) {
  test::expect_error(
      [] {
        fit_logistic(torch::zeros({3, 2}), torch::zeros({4}, torch::kLong), 2, {});
      },
      "features [N, D] and labels [N]");
  test::expect_error(
      [] {
        fit_logistic(torch::zeros({3, 2}), torch::zeros({3}, torch::kLong), 1, {});
      },
      "at least 2 classes");
}

}  // namespace
}  // namespace tlkit::pipeline
