#pragma once
// The transfer-learning pipeline (Yosinski et al. 2014, "How transferable are features in deep
// neural networks?"; torchvision's "Transfer Learning for Computer Vision" tutorial).
//
//   finetune    stage 1, feature extraction: the backbone is frozen, the features of the head's
//               input are computed once and cached (keyed on model, layer, preprocessing and the
//               exact file list), and a new head for the user's classes is trained on the cache.
//               The head is the classification layer, or every layer from `head.from` on.
//               stage 2, fine-tuning: the model starts from the stage-1 head, the upper layers are
//               unfrozen (lower layers stay frozen), each layer gets its own learning rate
//               (transferred layers smaller: depth decay or rules), with early stopping, a snapshot
//               at every warm restart, and EMA weights.
//   train       every layer trainable (from scratch, or full fine-tuning), same loop and outputs.
//
// Both then evaluate the candidates (finetune: the stage-1 head too) on the evaluation split (test,
// else val), export the one that is best on *validation* by the run's monitored metric as one
// TorchScript file, and write the report. The steps, one file each: config.h (what the run is),
// build.h (its pieces), fit.h (the training loop with callbacks), select.h (which weights), and
// model/export.h.
//
// A run folder holds config.json, model.pt, checkpoints/{last,best}.pt, snapshots/, metrics.csv
// (+ stage1/), TensorBoard events, curves_*.png, results.md and summary.json.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/pipeline/config.h>
#include <tlkit/train/metrics.h>

namespace tlkit::pipeline {

struct ResultRow {
  std::string name;  // "feature extraction (stage 1 head)", "fine-tuning: last", "...: EMA", ...
  double accuracy = 0;
  double loss = 0;
  std::int64_t examples = 0;
  bool exported = false;
  train::Evaluation evaluation;  // every metric (undefined confusion: not measured)
};

// Temperature scaling of the exported model (--calibrate temperature; train/calibration.h): T
// fitted on held-out predictions, divided into model.pt's classification layer
// (model/temperature.h). NLL and ECE (15 bins) before and after, on what T was fitted on and on
// the evaluation split when that is another split (the test split: reported, never used).
// NLL and ECE of one set of predictions, before and after dividing the logits by T.
struct CalibrationScores {
  std::int64_t examples = 0;
  double nll_before = 0, nll_after = 0, ece_before = 0, ece_after = 0;
};

struct CalibrationResult {
  std::string mode = "none";  // none | temperature
  bool fitted = false;
  double temperature = 1;
  bool at_bound = false;   // the optimum lay beyond the allowed range: skipped, not cut there
  std::string held_out;    // what T was fitted on, or why calibration was skipped
  CalibrationScores held;  // on what T was fitted on
  std::string eval_split;  // empty: not measured on another split
  CalibrationScores eval;
};

struct RunResult {
  std::vector<ResultRow> rows;
  std::string split;               // the split the rows were measured on
  std::vector<std::string> classes;  // the class names, by label
  std::filesystem::path exported;  // model.pt
  std::string exported_from;       // which candidate's weights were exported
  std::string exported_because;    // e.g. "lowest val_loss on validation (0.41) of 4 candidates"
  // How the choices were made when cross-validated (Markdown: each candidate's estimate, mean +-
  // std over the folds, and the choice); empty when the val split decided.
  std::string decisions;
  // What the exported model gets wrong on `split` (Markdown: the most confused pairs and the
  // confusion_matrix.png / top_losses.png written into the run folder); empty when not measured.
  std::string pictures;
  CalibrationResult calibration;
};

// Both validate the config first and write it to config.out / "config.json".
RunResult finetune(const RunConfig& config);
RunResult train(const RunConfig& config);

// The rows as a Markdown table.
std::string format_results(const RunResult& result);

}  // namespace tlkit::pipeline
