#pragma once
// The transfer-learning pipeline (lecture "Training DNNs II": transfer learning).
//
//   finetune    stage 1, feature extraction: the backbone is frozen, the features of the head's
//               input are computed once and cached (extract_features), and a new head for the
//               user's classes is trained on the cache for many cheap epochs. The head is the
//               classification layer, or every layer from `head_from` on (re-initialised).
//               stage 2, fine-tuning: the model starts from the stage-1 head, the upper layers are
//               unfrozen (lower layers stay frozen), each layer gets its own learning rate
//               (transferred layers smaller: depth decay or rules), with early stopping, a snapshot
//               at every warm restart, and EMA weights.
//               Then last / best / EMA / snapshot-ensemble weights are evaluated on the test split
//               (or val when there is none) and the best is exported as one TorchScript file.
//   train       every layer trainable (from scratch, or full fine-tuning), same loop and outputs.
//
// A run folder holds model.pt, checkpoints/{last,best}.pt, snapshots/, metrics.csv (+ stage1/),
// TensorBoard events, curves.png, results.md and summary.json.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace tlkit::pipeline {

struct DataOptions {
  std::string source;          // DIR | cifar10:DIR | fashion-mnist:DIR | mnist:DIR
  double val_split = 0.2;      // when the source has no val split of its own
  std::uint64_t seed = 0;
  size_t limit = 0;            // at most this many samples per split (0 = all)
  size_t workers = 2;          // decoding threads
  std::int64_t batch_size = 32;
  bool augment = true;         // random resized crop + flip for training
  double min_crop_scale = 0.5; // smallest area fraction of the random crop
  double flip = 0.5;           // probability of a horizontal flip (0 for digits and text)
  bool strict = false;         // a corrupt file is an error instead of a skip
};

struct FitOptions {
  std::int64_t epochs = 10;
  std::string optimizer = "momentum:lr=0.01";  // tlkit::optim spec: name[:key=value,...]
  std::string schedule = "cosine";              // tlkit::schedule spec
  bool schedule_per_batch = false;
  std::int64_t patience = 5;       // early stopping on val_loss; 0 = off
  double min_delta = 0;
  double ema_decay = 0.999;        // 0 = no EMA
  bool snapshots = true;           // a snapshot at each warm restart
  std::int64_t overfit_batches = 0;  // > 0: train and validate on these batches only
  double grad_clip = 0;
  c10::Device device = c10::kCPU;
  bool progress = true;
};

struct FinetuneOptions {
  std::filesystem::path model;
  std::filesystem::path out;
  DataOptions data;
  // Stage 1: a new head on cached features.
  // The first layer of the new head: every layer from it to the output is re-initialised and
  // trained on the cached output of the layer below it. Empty: the classification layer only
  // (features of the penultimate layer, e.g. VGG16's classifier.4). An earlier layer (e.g.
  // "classifier.0", or a convolution) suits target data unlike the source: the upper layers of a
  // network are the most specific to the task it was trained on.
  std::string head_from;
  std::int64_t head_epochs = 30;
  std::string head_optimizer = "adam:lr=0.001";
  std::string head_schedule = "cosine";
  std::int64_t head_batch_size = 64;
  // Stage 2: fine-tuning.
  FitOptions fine;
  std::string unfreeze_from;  // first trainable layer; empty = the top third of the parametrised layers
  std::string lr_rules;       // "regex=lr,..." (0 = frozen); overrides the depth decay
  double lr_decay = 0.5;      // lr × decay^k for the k-th parametrised layer below the head
  bool resume = false;        // continue stage 2 from out/checkpoints/last.pt
};

struct TrainOptions {
  std::filesystem::path model;
  std::filesystem::path out;
  DataOptions data;
  FitOptions fit;
  bool reinitialize = false;  // fresh random weights (training from scratch)
  bool resume = false;
};

struct ResultRow {
  std::string name;  // "feature extraction", "fine-tuning (last)", "best", "EMA", "ensemble (k)"
  double accuracy = 0;
  double loss = 0;
  std::int64_t examples = 0;
};

struct RunResult {
  std::vector<ResultRow> rows;
  std::string split;  // the split the rows were measured on
  std::filesystem::path exported;  // model.pt
  std::string exported_from;       // which row's weights were exported
};

RunResult finetune(const FinetuneOptions& options);
RunResult train(const TrainOptions& options);

// The rows as a Markdown table.
std::string format_results(const RunResult& result);

}  // namespace tlkit::pipeline
