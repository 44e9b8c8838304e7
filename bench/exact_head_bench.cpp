// exact_head_bench: finetune's exact head (stage 1's logistic regression over 7 L2 strengths with
// k-fold cross-validation, then the fit on every image) on a folder of cached features, timed;
// bench/exact_head_reference.py runs the same on the same features in Python (torch.optim.LBFGS)
// and bench/stage1_cost.sh alternates the two.
//
//   build/bench/exact_head_bench --features RUN/features/train [--folds 5] [--seed 42]
//       [--threads 2] [--protocol path|cold] [--folds-out F.npy] [--weight-out W.npy]
//   build/bench/exact_head_bench --features DIR --time-iteration ROWS [--threads 2]
//
// The features are standardised as stage 1 does (mean, unbiased std, scale 1 where the std is
// under 1e-6), in float32, then solved in float64. Protocols:
//   path  tlkit's: the row space of every image when there are fewer images than features, the
//         strengths strongest first with warm starts per fold, LogisticOptions' tolerances, the
//         final fit from the mean of the chosen strength's fold fits;
//   cold  tlkit's before: every fit from zeros on all features, max_iter 500, tolerance_grad 1e-9,
//         tolerance_change 1e-12, history 100.
// Prints one JSON line: seconds, fits, iterations, the chosen strength, the CV loss per strength.
// --folds-out writes the fold of each row (int64), --weight-out the final weight [C, D] (float64,
// in the standardised space) for the comparison with Python. --time-iteration: the seconds of one
// L-BFGS iteration on ROWS random rows of the folder's width (float64, in the row space when ROWS
// is under the width), for extrapolating to more images.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/core/npy.h>
#include <tlkit/core/threads.h>
#include <tlkit/data/subset.h>
#include <tlkit/pipeline/logistic.h>

namespace {

using tlkit::pipeline::LogisticFit;
using tlkit::pipeline::LogisticOptions;
using tlkit::pipeline::LogisticPathStep;

struct Args {
  std::string features;
  std::int64_t folds = 5;
  std::uint64_t seed = 42;
  int threads = 2;
  std::string protocol = "path";
  std::string folds_out, weight_out;
  std::int64_t time_rows = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      TLKIT_CHECK(i + 1 < argc, arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--features")
      a.features = value();
    else if (arg == "--folds")
      a.folds = std::atoll(value().c_str());
    else if (arg == "--seed")
      a.seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (arg == "--threads")
      a.threads = std::atoi(value().c_str());
    else if (arg == "--protocol")
      a.protocol = value();
    else if (arg == "--folds-out")
      a.folds_out = value();
    else if (arg == "--weight-out")
      a.weight_out = value();
    else if (arg == "--time-iteration")
      a.time_rows = std::atoll(value().c_str());
    else
      tlkit::fail("unknown option ", arg, "; see the top of bench/exact_head_bench.cpp");
  }
  TLKIT_CHECK(!a.features.empty(), "--features DIR (a tlkit feature folder) is required");
  TLKIT_CHECK(a.protocol == "path" || a.protocol == "cold", "--protocol path or cold");
  return a;
}

std::vector<double> strengths_strongest_first() {
  std::vector<double> grid;
  for (int k = 1; k >= -5; --k) grid.push_back(std::pow(10.0, k));
  return grid;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = parse(argc, argv);
    tlkit::set_threads(args.threads);
    auto x = tlkit::read_npy(args.features + "/features.npy");
    const auto y = tlkit::read_npy(args.features + "/labels.npy");
    const auto classes = y.max().item<std::int64_t>() + 1;
    if (args.time_rows > 0) {
      at::manual_seed(0);
      const auto rows = at::randn({args.time_rows, x.size(1)}, at::kDouble);
      const auto labels = at::arange(args.time_rows, at::kLong).remainder(classes);
      const auto space = tlkit::pipeline::RowSpace::of(rows);
      const auto projected = space.project(rows);
      LogisticOptions options;
      options.max_iter = 10;
      options.tolerance_grad = 0;
      options.tolerance_change = 0;
      const auto start = std::chrono::steady_clock::now();
      const auto fit = tlkit::pipeline::fit_logistic(projected, labels, classes, options);
      const auto seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf(
          "{\"rows\": %lld, \"dim\": %lld, \"solved_dim\": %lld, "
          "\"seconds_per_iteration\": %.5f}\n",
          static_cast<long long>(args.time_rows), static_cast<long long>(x.size(1)),
          static_cast<long long>(projected.size(1)),
          seconds / static_cast<double>(std::max<std::int64_t>(1, fit.iterations)));
      return 0;
    }
    const std::vector<std::int64_t> labels(y.data_ptr<std::int64_t>(),
                                           y.data_ptr<std::int64_t>() + y.numel());
    const auto fold_of = at::tensor(tlkit::data::stratified_folds(labels, args.folds, args.seed));
    if (!args.folds_out.empty()) tlkit::write_npy(args.folds_out, fold_of);

    const auto start = std::chrono::steady_clock::now();
    const auto std = x.std(0);
    x.sub_(x.mean(0)).div_(at::where(std > 1e-6, std, at::ones_like(std)));
    const auto x64 = x.to(at::kDouble);
    const auto grid = strengths_strongest_first();
    LogisticOptions options;
    if (args.protocol == "cold") {
      options.tolerance_grad = 1e-9;
      options.tolerance_change = 1e-12;
      options.history_size = 100;
    }
    std::vector<LogisticPathStep> path;
    tlkit::pipeline::RowSpace space;  // the identity unless the protocol reduces
    at::Tensor features = x64;
    if (args.protocol == "path") {
      space = tlkit::pipeline::RowSpace::of(x64);
      features = space.project(x64);
      path = tlkit::pipeline::logistic_path(features, y, classes, grid, fold_of, args.folds, {}, {},
                                            options);
    } else {
      for (const double l2 : grid)  // each strength alone: every fit from zeros
        path.push_back(tlkit::pipeline::logistic_path(features, y, classes, {l2}, fold_of,
                                                      args.folds, {}, {}, options)
                           .front());
    }
    // The weakest strength first (a tie keeps it), by the pooled CV loss.
    const LogisticPathStep* chosen = nullptr;
    double chosen_loss = 0;
    std::int64_t iterations = 0, fits = 0;
    std::string losses;
    for (auto step = path.rbegin(); step != path.rend(); ++step) {
      double loss = 0;
      std::int64_t n = 0;
      for (const auto& s : step->scores) {
        loss += s.loss_sum;
        n += s.examples;
      }
      loss /= static_cast<double>(n);
      iterations += step->iterations;
      fits += static_cast<std::int64_t>(step->fits.size());
      losses += (losses.empty() ? "" : ", ") + std::string("\"") + std::to_string(step->l2) +
                "\": " + std::to_string(loss);
      if (!chosen || loss < chosen_loss) {
        chosen = &*step;
        chosen_loss = loss;
      }
    }
    options.l2 = chosen->l2;
    LogisticFit final_fit;
    if (args.protocol == "path") {
      const auto mean = tlkit::pipeline::average_fit(chosen->fits);
      final_fit = space.lift(tlkit::pipeline::fit_logistic(features, y, classes, options, &mean));
    } else {
      final_fit = tlkit::pipeline::fit_logistic(features, y, classes, options);
    }
    iterations += final_fit.iterations;
    ++fits;
    const auto seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!args.weight_out.empty()) tlkit::write_npy(args.weight_out, final_fit.weight);
    std::printf(
        "{\"impl\": \"tlkit\", \"protocol\": \"%s\", \"rows\": %lld, \"dim\": %lld, "
        "\"solved_dim\": %lld, \"seconds\": %.4f, \"fits\": %lld, \"iterations\": %lld, "
        "\"l2\": %g, \"cv_loss\": {%s}}\n",
        args.protocol.c_str(), static_cast<long long>(x.size(0)), static_cast<long long>(x.size(1)),
        static_cast<long long>(features.size(1)), seconds, static_cast<long long>(fits),
        static_cast<long long>(iterations), chosen->l2, losses.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exact_head_bench: %s\n", e.what());
    return 1;
  }
}
