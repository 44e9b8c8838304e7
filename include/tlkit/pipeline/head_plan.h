#pragma once
// What each head candidate of finetune's stage 1 (--head-from auto) costs on this model and this
// folder, and the plan that keeps the affordable ones, made before any feature is extracted (so
// the one backbone pass caches only the layers the kept heads train on).
//
// Training cost. A head trained by gradient: one forward+backward of its layers on a batch of its
// input shape, measured on the model (the optimizer's update is not counted), times its optimizer
// steps per fit, times its fits (folds + 1 under cross-validation, else 1). The step is first
// timed on one image and one thread: when that divided by the run's thread count (N threads are
// at most N times faster) already puts the head over the budget, it is dropped without more
// timing (a step on more images costs no less). Else the batch is timed on the run's threads and
// on one, and the head trains on the faster (threads that wait for each other on every short
// operation cost more than they save, many times more on a busy machine). The exact head (logistic
// regression, see logistic.h): one L-BFGS iteration on its problem's size, measured, times 100
// iterations a fit (the warm-started L2 path takes 80 a fit on VGG16's features of 160 images, 125
// on vgg_tiny's; at most LogisticOptions::max_iter), times its fits (L2 strengths x folds + 1).
// Every timing is the median of a few runs (at least 2, up to 5 while under a second in all): on
// a busy machine one run of a short step can take many times its cost.
// Cache: images x values per image x 4 bytes (float32), held in memory while the head trains.
//
// The rule: the classification layer is always kept (every plan falls back to it, and its exact
// fit is cheap); another candidate is kept when its cache is at most `cache_bytes` (1 GiB) and its
// training at most `train_seconds`: the larger of one backbone pass over the folder and 30 s. On a
// big model and a small folder the deep heads cost more than the pass that caches them and are
// dropped; on a small model, or with more images, they stay.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>

#include <tlkit/model/classifier.h>

namespace tlkit::pipeline {

struct HeadCost {
  std::string head;           // the head's first layer
  std::string feature_layer;  // the cached layer it trains on
  std::int64_t feature_dim = 0;
  bool exact = false;         // fitted as logistic regression (L-BFGS)
  std::int64_t settings = 1;  // L2 strengths tried (exact), else 1
  std::int64_t folds = 0;     // cross-validation folds (0: none)
  // Trainings in all: folds + 1 (the fit on every image) under cross-validation, else 1; the
  // exact head fits every strength on every fold and the chosen one on every image.
  std::int64_t fits = 0;
  std::int64_t steps = 0;    // per fit: optimizer steps, or L-BFGS iterations (exact, typical)
  double step_seconds = 0;   // measured: one step (one L-BFGS iteration)
  bool lower_bound = false;  // step_seconds timed on one image only (already over the budget)
  int threads = 0;           // 1: its steps were faster on one thread (it trains so); 0: the run's
  double cache_bytes = 0;

  double train_seconds() const {
    return static_cast<double>(fits) * static_cast<double>(steps) * step_seconds;
  }
  // "exact, 7 L2 x 5 folds + 1 fits" or "504 steps x 6 fits".
  std::string work() const;
};

struct HeadBudget {
  double train_seconds = 30;
  double cache_bytes = 1024.0 * 1024 * 1024;
  std::string why;  // "one backbone pass over 160 images" or "the 30 s minimum"
};

// The larger of one backbone pass (`pass_seconds`, over `images`) and `min_seconds`.
HeadBudget head_budget(double pass_seconds, std::int64_t images, double min_seconds = 30);

struct HeadPlan {
  std::vector<HeadCost> kept;
  std::vector<std::pair<HeadCost, std::string>> dropped;  // with the reason
  HeadBudget budget;

  std::vector<std::string> heads() const;
  std::vector<std::string> feature_layers() const;  // of the kept heads, each once, in order
  double train_seconds() const;                     // of the kept heads
  // "classifier.6 (exact, 7 L2 x 5 folds + 1 fits, ~2 s), classifier.0 dropped (~900 s of head
  // training (504 steps x 6 fits) > budget 42 s)".
  std::string describe() const;
};

// The rule above applied to measured costs, in their order (the first is the classification
// layer, always kept).
HeadPlan plan_heads(const std::vector<HeadCost>& costs, const HeadBudget& budget);

// What stage 1 will do with each candidate.
struct HeadWork {
  std::int64_t images = 0;        // cached rows (every split the head's features are needed for)
  std::int64_t train_images = 0;  // rows one fit trains on
  std::int64_t folds = 0;         // cross-validation folds (0: none; fits = folds + 1)
  std::int64_t classes = 2;
  std::int64_t steps = 500;  // optimizer steps per fit of a head trained by gradient
  std::int64_t batch_size = 32;
  bool exact_solver = true;             // the classification layer by logistic regression
  std::int64_t l2_strengths = 7;        // the exact head's grid
  std::int64_t exact_iterations = 100;  // its typical L-BFGS iterations per fit
  bool choose_l2 = true;                // false: one fit (nothing to choose the strength on)
  c10::Device device = c10::kCPU;       // where heads train (the exact head: on the CPU)
};

// The cost of the head that starts at `head` on `model`, measured as above on work.device;
// `budget_seconds` lets an obviously unaffordable head stop at the one-image timing. The model's
// weights, device, modes and trainable flags are left as they were.
HeadCost measure_head(model::Classifier& model, const std::string& head, const HeadWork& work,
                      double budget_seconds);

// Seconds of one pass of the backbone over `images` images up to the deepest of `layers`, from
// one timed batch of up to 4 images on `device` (per image, a batch of 1 takes twice as long as
// the batches extraction runs, a batch of 4 a quarter longer, on VGG16 on 2 cores; decoding not
// counted).
double estimate_backbone_pass(model::Classifier& model, const std::vector<std::string>& layers,
                              std::int64_t images, c10::Device device = c10::kCPU);

}  // namespace tlkit::pipeline
