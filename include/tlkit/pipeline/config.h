#pragma once
// RunConfig: everything a `tlkit train` or `tlkit finetune` run is made of, resolved once (from
// defaults, a --config file and flags, in that order), validated once, and written to the run
// folder as config.json: the record of the run, which `--config RUN/config.json` repeats.
//
//   config (this file) -> build (build.h: data, preprocessing, model, groups, optimizer, schedule)
//   -> fit (fit.h: the trainer with its callbacks) -> select (select.h: one monitored metric on
//   validation) -> export (model/export.h).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include <tlkit/core/json.h>
#include <tlkit/train/mix.h>

namespace tlkit::pipeline {

// A model's preprocessing given by the user; unset values come from the model's metadata, then
// from the defaults (224 crop, 256 resize, ImageNet mean / std).
struct PreprocessOptions {
  std::int64_t input_size = 0;  // centre crop / network input (0 = the model's)
  std::int64_t resize = 0;      // shorter side before the crop (0 = from input_size, see build.h)
  std::vector<double> mean;     // 1 or 3 values (empty = the model's)
  std::vector<double> std;
  bool any() const { return input_size > 0 || resize > 0 || !mean.empty() || !std.empty(); }
};

struct DataOptions {
  std::string source;      // DIR | cifar10:DIR | fashion-mnist:DIR | mnist:DIR
  double val_split = 0.2;  // when the source has no val split of its own
  std::uint64_t seed = 0;
  size_t limit = 0;              // at most this many samples per split (0 = all)
  size_t workers = 2;            // decoding threads
  std::int64_t batch_size = 32;  // 0 = auto: the training images / 8, within [8, 32]
  bool augment = true;           // random resized crop + flip for training
  double min_crop_scale = 0.5;   // smallest area fraction of the random crop
  double flip = 0.5;             // probability of a horizontal flip (0 for digits and text)
  // After the crop and flip (data/auto_augment.h): "none", "trivial" (TrivialAugmentWide) or
  // "rand:N,M" (RandAugment: N ops at magnitude bin M of 31), torchvision's ops and magnitudes.
  std::string augment_policy = "none";
  // After normalisation (data/random_erasing.h): torchvision's RandomErasing with this
  // probability (0 = off), the box filled with "0" or "random" (per-pixel normal draws).
  double random_erasing = 0;
  std::string erasing_value = "0";
  bool strict = false;           // a corrupt file is an error instead of a skip
  // The training order of each epoch: "shuffle" (a permutation) or "balanced" (draws with
  // replacement, every class equally likely: data/sampler.h), both from (seed, epoch).
  std::string sampler = "shuffle";
  PreprocessOptions preprocess;
};

struct FitOptions {
  std::int64_t epochs = 10;  // 0 = auto: about 300 optimizer steps, within [5, 40] epochs
  std::string optimizer = "momentum:lr=0.01";  // tlkit::optim spec: name[:key=value,...]
  std::string schedule = "cosine";             // tlkit::schedule spec, or "auto"
  bool schedule_per_batch = false;
  // The one monitored metric on validation: early stopping, best weights, the exported model.
  std::string monitor = "val_loss";
  // Early stopping: epochs without improvement (0 = off; -1 = auto: 5 epochs, at least 100
  // optimizer steps' worth).
  std::int64_t patience = -1;
  double min_delta = 0;              // an improvement of the monitor must exceed this
  std::int64_t val_every = 1;        // validate every N epochs (and the first and last)
  double ema_decay = 0.999;          // 0 = no EMA
  bool snapshots = true;             // a snapshot at each warm restart
  std::int64_t overfit_batches = 0;  // > 0: train and validate on these batches only
  double grad_clip = 0;
  std::string grad_clip_mode = "norm";  // norm | value | agc (train/clip.h)
  // The training loss (train/loss.h): label smoothing eps in [0, 1) (0 = off), and class weights
  // "none", "auto" (n_images / (n_classes x count[c]) on the training split, scikit-learn's
  // "balanced"; resolved() leaves it, resolve_budgets writes the numbers) or "w1,w2,...".
  double label_smoothing = 0;
  std::string class_weights = "none";
  // Gradient accumulation (train/trainer.h): batches per optimizer step (1 = off). The "auto"
  // budgets count optimizer steps of batch_size x accumulate images.
  std::int64_t accumulate = 1;
  // Weight decay (the optimizer's) on every parameter; by default biases and normalisation layers'
  // weights (0-d and 1-d parameters) train without it, as timm and fastai do.
  bool decay_all = false;
  // Batch mixing (train/mix.h, timm's Mixup in 'batch' mode) of the image-level training (train,
  // stage 2 of finetune; stage 1 trains on cached features, unmixed): Beta alphas of mixup and
  // cutmix (0 = off), the probability that a batch is mixed, that of cutmix when both are on, and
  // the epochs mixed (the first N; 0 = all). Off by default (bench/results/mixup.md).
  double mixup = 0;
  double cutmix = 0;
  double mix_prob = 1;
  double mix_switch_prob = 0.5;
  std::int64_t mix_off_epoch = 0;
  std::string on_nonfinite = "stop";  // stop | skip (a NaN/Inf step is never applied)
  c10::Device device = c10::kCPU;
  // The forward's arithmetic (train/precision.h): fp32 | tf32 | bf16 | fp16 (autocast; fp16 with
  // dynamic loss scaling), and channels-last memory layout for convolutions.
  std::string precision = "fp32";
  bool channels_last = false;
  // Batch norm of the trained layers: "train" (batch statistics, running statistics updated, as
  // PyTorch's train()) or "frozen" (every BatchNorm in eval mode: its stored statistics, while its
  // scale and shift still train). Frozen layers' BatchNorms are in eval mode either way.
  std::string batch_norm = "train";
  bool progress = true;
};

// Stage 1 of finetune: a new head trained on cached features.
struct HeadOptions {
  // The first layer of the new head: every layer from it to the output is re-initialised and
  // trained on the cached output of the layer below it. Empty: the classification layer only;
  // "auto" (finetune's default): the classification layer, the whole classifier and the last conv
  // block with the classifier are each tried, the best by a validation estimate (k-fold
  // cross-validation when the val split is small) is kept.
  std::string from;
  // The budget counts optimizer steps, so 50 images and 50,000 both get a converged head:
  // `steps` (0 = auto: at least 500, and at least 10 epochs), or `epochs` when set (> 0).
  std::int64_t steps = 0;
  std::int64_t epochs = 0;
  // "auto": a head that is one fully connected layer (the classification layer) is fitted
  // exactly: multinomial logistic regression on standardised features by L-BFGS, its L2 strength
  // chosen from a log grid by the validation estimate (k-fold CV when val is small); deeper heads
  // train with `optimizer`. "gradient": every head trains with `optimizer`.
  std::string solver = "auto";
  std::string optimizer = "adam";  // torch's default lr, 1e-3
  std::string schedule = "cosine";
  std::int64_t batch_size = 0;  // 0 = auto: the training images / 8, within [8, 64]
  std::int64_t patience = 0;    // early stopping (epochs); 0 = auto: 100 optimizer steps' worth
};

struct RunConfig {
  std::string command = "finetune";  // "train" | "finetune"
  std::filesystem::path model;
  // SHA-256 of the model file's content, set when a run starts (hashed once; caches and resume
  // checks use it); empty before.
  std::string model_sha256;
  std::filesystem::path out;
  DataOptions data;
  FitOptions fit;  // train, or stage 2 of finetune
  HeadOptions head;
  std::string unfreeze_from;  // finetune: first trainable layer; empty = every layer
  std::string lr_rules;       // finetune: "regex=lr,..." (0 = frozen); overrides the depth decay
  double lr_decay = 0.8;  // finetune: lr x decay^k for the k-th parametrised layer below the head
  // finetune: layers whose decay^k is under this are frozen (their updates would be negligible;
  // skipping their backward pass makes a deep network's step cheaper); 0 = every layer trains.
  double lr_floor = 0.1;
  bool reinitialize = false;  // train: fresh random weights (training from scratch)
  // finetune: "scratch" also trains the same network from fresh random weights with stage 2's
  // budget (batch, epochs, schedule, early stopping, EMA; every layer, one lr) and reports it
  // beside the transfer results, never exported; "" (or "none"): no baseline.
  std::string baseline;
  // The baseline's optimizer spec; empty: stage 2's optimizer at torch's default lr for it
  // (Adam 1e-3), or 10x stage 2's lr where torch has none (SGD), set by resolved().
  std::string baseline_optimizer;
  // finetune: how choices are made on small data. Every choice that reads validation (the head,
  // its L2, stage 2's length, which weights to export) is made by stratified k-fold
  // cross-validation over every labelled image (train + val pooled), and the model is then fitted
  // once more on all of them, when validation is small: some class has fewer than
  // kSmallValidation validation images (a user's own val/ folder included), or there is none
  // (--val-split 0). -1 = auto (5 folds when small, else the val split decides); 0 = never
  // (--no-cv: the val split decides; without one the flags' budgets run to the end); K >= 2 =
  // always, with K folds. Folds are capped by the smallest class's image count.
  std::int64_t cv_folds = -1;
  // finetune on small data, with augmentation on: stage 2's folds are also run without it, and
  // the final fit trains with or without it, whichever the folds' best option favours (characters
  // and digits change class under crops and flips; photos do not). false (--no-cv-augment): the
  // configured augmentation is kept.
  bool cv_augment = true;
  static constexpr std::int64_t kSmallValidation = 10;
  // Calibration of the exported model: "none", or "temperature": one T > 0 fitted to minimise the
  // NLL of softmax(logits / T) on held-out predictions of the exported weights (the val split
  // when it decides; on small data the stage-2 folds' held-out predictions of the chosen option,
  // as scikit-learn's CalibratedClassifierCV(ensemble=False); never the training images: without
  // anything held out it is skipped, saying so), divided into model.pt's classification layer.
  // The accuracy does not change, only the probabilities.
  std::string calibrate = "none";
  bool resume = false;  // continue from out/checkpoints/last.pt

  // The defaults of a command ("train" or "finetune").
  static RunConfig defaults(const std::string& command);

  // The config with every "auto" (0) budget replaced by its value for `train_images` training
  // images: batch sizes, epochs, patience (see the fields). Deterministic, so --config repeats it.
  RunConfig resolved(size_t train_images) const;

  // Every check of every value, once; throws tlkit::Error with one message naming the option and
  // the fix. Optimizer and schedule specs are built on a stand-in parameter, so a bad spec fails
  // before any work.
  void validate() const;

  Json to_json() const;
  // Reads a config written by to_json (or by hand): unknown keys are errors, missing ones keep the
  // command's defaults.
  static RunConfig from_json(const Json& json);
  static RunConfig load(const std::filesystem::path& path);
  // What a --resume of `earlier` (the run folder's config.json) may not change, one line per
  // setting: "--optimizer: the run used 'adam', now 'sgd:lr=0.1'". The length (--epochs,
  // --patience, --min-delta), where it runs (--out, --device, --workers, progress) and the paths
  // of the model and the data (moved folders; the caller checks the model's contents, the
  // checkpoint the class names) may change.
  std::vector<std::string> resume_conflicts(const RunConfig& earlier) const;
  void save(const std::filesystem::path& path) const;  // atomically
};

// The batch-mixing flags' checks (train, finetune and bench share them): throws naming the flag.
void check_mix_flags(double mixup, double cutmix, double prob, double switch_prob,
                     std::int64_t off_epoch);
// The per-image augmentation flags' checks (train, finetune and bench share them): --augment,
// --random-erasing, --erasing-value; throws naming the flag.
void check_augment_flags(const std::string& policy, double random_erasing,
                         const std::string& erasing_value);
// "random crop 0.5-1 of the area, flip 0.5[, TrivialAugmentWide][, random erasing 0.25 (0)]".
std::string describe_augmentation(const DataOptions& data);
// The trainer's mixing options of `fit`, drawing from `seed`.
train::MixOptions mix_options(const FitOptions& fit, std::uint64_t seed);
// One log line: what is mixed, how often, and what train_loss and train_acc then mean.
std::string describe_mixing(const train::MixOptions& mix);

}  // namespace tlkit::pipeline
