#pragma once
// --calibrate temperature (internal to the pipeline layer): the held-out predictions T is fitted
// on, the stage-2 folds' record of them, and the calibration of the exported model at the end of
// a run (train/calibration.h fits T, model/temperature.h stores it in model.pt).

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include <tlkit/core/json.h>
#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/transfer.h>
#include <tlkit/train/callback.h>
#include <tlkit/train/network.h>

namespace tlkit::train {
class EmaCallback;
}

namespace tlkit::pipeline::detail {

// The log-probabilities [N, C] (float32, CPU) of `network` in eval mode over one pass of
// `source`, and the labels [N].
std::pair<at::Tensor, at::Tensor> held_out_predictions(train::Network& network,
                                                       train::BatchSource& source,
                                                       const c10::Device& device);

// One stage-2 fold's held-out predictions: of the stage-1 head before stage 2, and of the last and
// EMA weights after each epoch ([E, N, C]; EMA undefined without EMA).
struct FoldPredictions {
  at::Tensor labels, head, last, ema;
  bool complete() const { return labels.defined() && head.defined() && last.defined(); }
  // The predictions of option (candidate "stage 1 head" | "last" | "EMA", after `epochs`);
  // undefined when they were not recorded.
  at::Tensor of(const std::string& candidate, std::int64_t epochs) const;
  void save(const std::filesystem::path& file) const;  // atomically
  static FoldPredictions load(const std::filesystem::path& file);  // incomplete when unreadable
};

// A callback factory for StageSetup::extra_callback that adds each epoch's held-out predictions of
// the last and EMA weights on `held` to `record` (which must outlive the stage).
std::function<std::shared_ptr<train::Callback>(train::EmaCallback*)> record_predictions(
    train::BatchSource& held, const c10::Device& device, FoldPredictions& record);

// Where a run's T is fitted: the val split's predictions of the exported weights when the val
// split decides, else the stage-2 folds' (`fold_log_probabilities`, `fold_labels`, described by
// `fold_description`), else nothing (skipped, saying why). `eval_is_other` says the evaluation
// split is another split than the held-out one (then it is measured before and after too). On
// success the model's classification layer is divided by T; either way the model's recorded
// temperature is set (1 = not calibrated).
struct HeldOut {
  train::BatchSource* val = nullptr;  // the val split, when it decides
  at::Tensor fold_log_probabilities, fold_labels;
  std::string fold_description;
  train::BatchSource* eval = nullptr;  // measured before / after when it is another split
  std::string eval_split;
};
CalibrationResult calibrate_exported(const RunConfig& config, model::Classifier& model,
                                     train::Network& network, const HeldOut& held);

// results.md's section and summary.json's object.
std::string calibration_markdown(const CalibrationResult& calibration);
Json calibration_json(const CalibrationResult& calibration);

}  // namespace tlkit::pipeline::detail
