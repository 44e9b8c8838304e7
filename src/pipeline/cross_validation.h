#pragma once
// Stage 2's choices on small data by k-fold cross-validation (internal to the pipeline layer):
// how long to fine-tune and which weights to export (the stage-1 head, the last weights or their
// EMA), decided on the folds' validation curves instead of a handful of validation images. The
// model is then fitted once more on every image with the chosen settings (finetune.cpp).

#include <cstdint>
#include <optional>
#include <string>

#include <tlkit/pipeline/config.h>
#include <tlkit/train/network.h>

#include "run.h"
#include "stage1.h"

namespace tlkit::pipeline::detail {

struct StageTwoChoice {
  std::string candidate;      // "stage 1 head", "last" or "EMA"
  std::int64_t epochs = 0;    // stage 2 epochs on every image (0: the stage-1 head, no stage 2)
  std::int64_t layout = 0;    // the epochs the schedule is laid out for (the folds' length)
  bool augment = true;        // the final fit trains with the configured augmentation
  std::string reason;         // one line, for the log and "exported because"
  std::string report;         // Markdown: every option's estimate (mean +- std over the folds)
  // --calibrate temperature: the chosen option's held-out log-probabilities over every fold and
  // their labels (undefined when not recorded), and what they are or why they are missing.
  at::Tensor held_log_probabilities, held_labels;
  std::string held_out;
};

// Runs stage 1 (the chosen head refitted on the fold's images) and stage 2 on each of
// `run.data.cv_folds` stratified folds of the training images, the held fold validated every
// epoch (the last weights and their EMA), its curves in RUN/cv/fold-<k>/metrics.csv and its
// result in RUN/cv/fold-<k>/result.json (a --resume skips finished folds). `pretrained` is the
// model before stage 1 (new head in place); the model is left holding `after_stage1` (the stage-1
// head fitted on every image). Returns nullopt, saying so, when the folds' arithmetic is over
// stage_two_budget_flops (cv_options.h; unless --cv-folds forced them): the final fit then runs
// the full length and exports its last weights.
constexpr std::int64_t kStageTwoFolds = 3;  // unless --cv-folds K asks for K
std::optional<StageTwoChoice> cross_validate_stage2(Started& run, const HeadResult& head,
                                                    const train::NamedTensors& pretrained,
                                                    const train::NamedTensors& after_stage1,
                                                    const RunConfig& config);

}  // namespace tlkit::pipeline::detail
