#pragma once
// Stage 1 of finetune (internal to the pipeline layer): a new head trained on cached features of
// the frozen layers below it, and the choice of where the head starts (`--head-from auto`).

#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/config.h>
#include <tlkit/pipeline/transfer.h>
#include <tlkit/train/metrics.h>

namespace tlkit::pipeline::detail {

struct HeadResult {
  std::string head;              // the first layer of the head
  double l2 = 0;                 // the exact head's L2 strength (0: trained by gradient)
  ResultRow row;                 // on the evaluation split (reported only)
  train::Evaluation validation;  // on the val split (none when there is none)
  train::Evaluation estimate;    // what choices use: k-fold CV pooled over the folds, or val
  std::vector<train::Evaluation> by_fold;  // cross-validation: one per fold
  std::string
      estimate_name;  // "the val split (12 images)" or "5-fold cross-validation on 50 images"
};

// Trains the head that starts at `head` (re-initialised unless it is the classification layer,
// fresh from replace_head) on the cached features of every training image; with a val split the
// model keeps the head's best weights on it. When the run decides by cross-validation
// (data.cv_folds) the estimate is k-fold CV over the training images (the exact head's L2 is
// always chosen so) and the head is then fitted on all of them; else the estimate is the val
// split. Without `estimate` the row on the evaluation split is filled. The stage's metrics.csv
// and events go into `log_dir`.
HeadResult train_head(model::Classifier& model, const std::string& head, const PreparedData& data,
                      const RunConfig& config, bool estimate, const std::filesystem::path& log_dir);

// The chosen head (its depth and L2 strength) fitted again on `rows` of the training images only
// (a fold of stage 2's cross-validation), from the cached features; quiet.
void refit_head(model::Classifier& model, const HeadResult& chosen, const PreparedData& data,
                const RunConfig& config, const std::vector<std::int64_t>& rows);

// The depths `--head-from auto` tries, in order: the classification layer, the whole classifier
// (from its first fully connected layer) and the last convolution block with the classifier
// (VGG: from the convolution after the second-to-last pooling layer; a block network such as
// ResNet, MobileNetV3 or EfficientNet: from the last parametrised block before the global pool,
// e.g. layer4.1), where the model has them.
std::vector<std::string> head_candidates(const model::Classifier& model);

// Stage 1 with `config.head.from` ("auto": the candidates are costed on this model and folder
// and those within the budget kept (head_plan.h; the plan and its expected time are logged
// first), their features of each split cached by one backbone pass, every kept candidate trained
// from the same pretrained weights and the one with the best estimate kept as trained; each
// candidate's score is logged, its metrics in stage1/candidates/<head>/, the winner's also in
// stage1/).
HeadResult stage1(model::Classifier& model, const PreparedData& data, const RunConfig& config);

}  // namespace tlkit::pipeline::detail
