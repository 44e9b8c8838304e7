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
  ResultRow row;                 // on the evaluation split (reported only)
  train::Evaluation validation;  // on the val split
  train::Evaluation estimate;    // what the choice of head depth uses: val, or k-fold CV
  std::string estimate_name;     // "the val split" or "5-fold cross-validation on 50 images"
};

// Trains the head that starts at `head` (re-initialised unless it is the classification layer,
// fresh from replace_head) on cached features; the model keeps the head's best weights on val.
// With `estimate`, a small val split (fewer than 5 images of some class) is backed by k-fold
// cross-validation, which `estimate` then holds, and the row on the evaluation split is left
// empty (the caller fills it for the chosen head); else the estimate is the val split. The
// stage's metrics.csv and events go into `log_dir`.
HeadResult train_head(model::Classifier& model, const std::string& head, const PreparedData& data,
                      const RunConfig& config, bool estimate, const std::filesystem::path& log_dir);

// The depths `--head-from auto` tries, in order: the classification layer, the whole classifier
// (from its first fully connected layer) and the last convolution block with the classifier
// (from the convolution after the second-to-last pooling layer), where the model has them and
// their cached features fit in memory.
std::vector<std::string> head_candidates(const model::Classifier& model, size_t images);

// Stage 1 with `config.head.from` ("auto": every candidate is trained from the same pretrained
// weights and the one with the best estimate is kept as trained; each candidate's score is
// logged, its metrics in stage1/candidates/<head>/, the winner's also in stage1/).
HeadResult stage1(model::Classifier& model, const PreparedData& data, const RunConfig& config);

}  // namespace tlkit::pipeline::detail
