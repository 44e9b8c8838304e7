#pragma once
// Stage 2's cross-validation results and the options they score (the pipeline's, exposed for
// tests): what one fold leaves behind, the options read off the folds' curves (every length, last
// and EMA, and the stage-1 head alone), the best of them and the table results.md shows.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <tlkit/core/json.h>
#include <tlkit/pipeline/select.h>
#include <tlkit/train/metrics.h>

namespace tlkit::pipeline::detail {

// What one fold leaves behind: the stage-1 head's score on the held images, and per epoch the
// held images' loss and accuracy of the last weights and of their EMA.
struct FoldResult {
  double head_loss = 0, head_acc = 0;
  std::vector<double> loss, acc, ema_loss, ema_acc;
  double seconds = 0;
};
Json fold_to_json(const FoldResult& r);
FoldResult fold_from_json(const Json& j);  // throws tlkit::Error on a missing key

// The options, in order of preference: the full length (what the final fit runs by default), its
// EMA, shorter lengths (longest first), and last the stage-1 head alone. what[i] is (candidate:
// "last", "EMA" or "stage 1 head"; stage 2 epochs, 0 for the head).
struct StageTwoOptions {
  std::vector<FoldScores> scores;
  std::vector<std::pair<std::string, std::int64_t>> what;
};
// An option's mean loss and accuracy over the folds, as an Evaluation (for train::better).
train::Evaluation fold_means(const FoldScores& scores);

StageTwoOptions stage_two_options(const std::vector<FoldResult>& folds, std::int64_t epochs,
                                  bool ema);

// The stage 2 option (not the stage-1 head alone) with the best mean over the folds by `monitor`.
size_t best_stage_two_option(const StageTwoOptions& options, const std::string& monitor);

// A Markdown table of the main options (the full length, the head alone, the chosen one and the
// best length of each kind): mean +- std over the folds.
std::string options_table(const StageTwoOptions& options, size_t chosen, std::int64_t epochs,
                          const std::string& monitor);

// The budget of stage 2's folds, counted in floating-point operations (a training step: 3 forward
// passes, counted from the network's layer shapes), not in measured seconds, so that the same
// command on the same folder decides the same way on a quiet machine and a loaded one. On a CPU
// it is 6 TFLOP: about 2 minutes at the 50 GFLOP/s two cores reach training small convolutional
// networks; on a GPU 20 times that.
constexpr double kStageTwoBudgetFlopsCpu = 6e12;
constexpr double kStageTwoBudgetFlopsGpu = 20 * kStageTwoBudgetFlopsCpu;
inline double stage_two_budget_flops(bool gpu) {
  return gpu ? kStageTwoBudgetFlopsGpu : kStageTwoBudgetFlopsCpu;
}

// Whether stage 2's folds run, and also without augmentation, from their arithmetic only: each
// of the K folds trains `epochs` epochs on (K-1)/K of the `images` and validates the rest every
// epoch (twice with an EMA; a forward pass is a third of a training step). --cv-folds (`forced`)
// runs them whatever they cost; the comparison without augmentation doubles the folds and runs
// when twice the cost fits too.
struct StageTwoPlan {
  bool run_folds = false, without_augment = false;
  double flops = 0;  // one setting's folds (with augmentation)
};
StageTwoPlan plan_stage_two(double flops_per_image_step, double images, std::int64_t epochs,
                            std::int64_t folds, bool ema, bool compare_augment, bool forced,
                            double budget_flops);

}  // namespace tlkit::pipeline::detail
