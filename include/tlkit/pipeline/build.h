#pragma once
// The builders every command puts a run together with (after timm's resolve_data_config,
// create_optimizer_v2 and create_scheduler): data and its splits, the model's preprocessing,
// the model, loaders, the optimizer over parameter groups, the schedule, the trainer's options.
// train, finetune, evaluate, predict, lr-find, extract and info all use these; nothing is wired
// twice.

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <tlkit/data/dataset.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/pipeline/config.h>
#include <tlkit/train/batch_source.h>
#include <tlkit/train/trainer.h>

namespace torch::optim {
class Optimizer;
}
namespace tlkit::schedule {
class LRScheduler;
}

namespace tlkit::pipeline {

// ------------------------------------------------------------------ data
struct PreparedData {
  data::Splits splits;
  // eval: the test split, else val (null when neither: nothing is measured, only estimated); val
  // null when there is none (--val-split 0 without a val/ folder) or it was pooled into train.
  std::shared_ptr<const data::Dataset> train, val, eval;
  std::string eval_split;  // "test", "val" or "" (none)
  std::vector<std::string> classes;
  // finetune on small data: >= 2 when every choice is made by k-fold cross-validation over
  // `train`, which then holds every labelled image (train + val pooled; `val` is null).
  std::int64_t cv_folds = 0;
  std::string decided_by;  // how choices are made, for the log and the report
};

// Opens the source with its val split (stratified, seeded) and checks that train has images of at
// least 2 classes. Validation never uses the test split: without a val split (--val-split 0 and no
// val/ folder) `val` is null, and choices come from cross-validation or the settings.
PreparedData open_data(const DataOptions& options);

// ------------------------------------------------------------------ preprocessing
// The preprocessing a model is fed with, and where each value came from ("flag", "model",
// "default", or "from --input-size").
struct Preprocessing {
  std::int64_t input_size = 224;  // the centre crop
  std::int64_t resize = 256;      // shorter side before the crop
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
  std::string input_size_from = "default", resize_from = "default", mean_from = "default",
              std_from = "default";
  std::string describe()
      const;  // "resize 256 (model) -> centre crop 224 (model), mean ... (flag), std ..."
};

// Throws for values that cannot be used (sizes out of range, resize below the crop, not 1 or 3
// means/stds, a std <= 0).
void check_preprocess(const PreprocessOptions& options);

// Flags first, then the model's metadata, then the defaults. --input-size alone sets the resize to
// the same size scaled by the model's own resize/crop ratio when it has metadata, else to the input
// size itself (the whole image, no crop margin). One mean/std value applies to all three channels.
Preprocessing resolve_preprocessing(const model::ModelMetadata& metadata,
                                    const PreprocessOptions& options);

// Loads a classifier at its resolved input size and records the resolved preprocessing in it (so
// exports and feature manifests carry it). A model without tlkit metadata loaded without any
// preprocessing flag is warned about, naming the flags.
model::Classifier load_model(const std::filesystem::path& path, const PreprocessOptions& preprocess,
                             c10::Device device = c10::kCPU, Preprocessing* resolved = nullptr);

// The model's per-channel normalisation (1 value = every channel).
data::Normalization normalization(const model::ModelMetadata& metadata);
// What the model's first convolution takes: grey (1 channel) or RGB (3).
data::Channels input_channels(const model::Classifier& model);
// Resize -> centre crop -> normalise, from the model's metadata (evaluation, features, prediction).
std::shared_ptr<data::Transform> eval_transform(const model::Classifier& model);
// Random resized crop (+ flip) -> normalise, or eval_transform without augmentation.
std::shared_ptr<data::Transform> train_transform(const model::Classifier& model,
                                                 const DataOptions& options);

// Logs when the images are much smaller than the network input (e.g. 32-pixel images upscaled to
// 224): a hint that --input-size is missing.
void warn_if_upscaled(const data::Dataset& dataset, const model::Classifier& model);

// ------------------------------------------------------------------ loaders
std::shared_ptr<train::BatchSource> make_loader(std::shared_ptr<const data::Dataset> dataset,
                                                std::shared_ptr<data::Transform> transform,
                                                const DataOptions& options, bool shuffle);
struct Sources {
  std::shared_ptr<train::BatchSource> train, val, eval;
};
// Training (shuffled, augmented), validation and evaluation loaders with the model's preprocessing.
Sources make_sources(const PreparedData& data, const model::Classifier& model,
                     const DataOptions& options);

// ------------------------------------------------------------------ optimizer, schedule, trainer
// The lr an optimizer spec trains at: its lr=, else torch.optim's default for that optimizer.
double base_lr(const std::string& optimizer_spec);
// finetune --baseline scratch's optimizer: stage 2's spec at torch.optim's default lr for it
// (a fine-tuning lr is too small from random weights), or 10x its lr where torch has none (SGD).
std::string baseline_optimizer_for(const std::string& stage2_spec);
// The optimizer of `spec` over `groups`, each group at its own lr (per-layer rates keep their
// ratios). With a weight decay (the spec's, or AdamW's default 1e-2) and without `decay_all`,
// biases and normalisation layers' weights (every parameter of 0 or 1 dimensions) train without
// it, as timm's and fastai's defaults: each group with both kinds is split in two, the same lr.
std::unique_ptr<torch::optim::Optimizer> build_optimizer(
    const std::string& spec, const std::vector<model::ParamGroupSpec>& groups,
    bool decay_all = false);
// The schedule of `spec` for `epochs` epochs of `steps_per_epoch` scheduler steps each.
std::shared_ptr<schedule::LRScheduler> build_scheduler(const std::string& spec,
                                                       torch::optim::Optimizer& optimizer,
                                                       std::int64_t epochs,
                                                       std::int64_t steps_per_epoch);
train::TrainerOptions trainer_options(const FitOptions& fit, std::int64_t num_classes,
                                      const std::string& label);

}  // namespace tlkit::pipeline
