#include "run_options.h"

#include <cstdlib>
#include <iostream>
#include <sstream>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>
#include <tlkit/optim/settings.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/precision.h>

namespace tlkit::cli {
namespace {

template <typename T>
std::string text(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

std::string with_default(const std::string& help, const std::string& value) {
  return help + " (default: " + (value.empty() ? "none" : value) + ")";
}

std::vector<double> numbers(const std::string& option, const std::string& value) {
  std::vector<double> out;
  for (const auto& piece : split_trimmed(value, ',')) {
    char* end = nullptr;
    const double number = std::strtod(piece.c_str(), &end);
    if (piece.empty() || end != piece.c_str() + piece.size())
      throw UsageError("--" + option + " takes numbers separated by commas, got '" + value + "'");
    out.push_back(number);
  }
  return out;
}

// Sets `target` from option `name` when the command line gives it.
template <typename T>
void take(const cxxopts::ParseResult& result, const char* name, T& target) {
  if (result.count(name)) target = result[name].as<T>();
}

}  // namespace

void add_preprocess_options(cxxopts::Options& options) {
  options.add_options("Preprocessing (overrides the model's metadata)")(
      "input-size", "network input: the centre crop, in pixels (default: the model's, else 224)",
      cxxopts::value<std::int64_t>())(
      "resize",
      "shorter side before the centre crop (default: the model's, else from --input-size)",
      cxxopts::value<std::int64_t>())(
      "mean", "per-channel mean a,b,c (or one value) (default: the model's, else ImageNet)",
      cxxopts::value<std::string>())(
      "std", "per-channel std a,b,c (or one value) (default: the model's, else ImageNet)",
      cxxopts::value<std::string>());
}

pipeline::PreprocessOptions preprocess_options(const cxxopts::ParseResult& result) {
  pipeline::PreprocessOptions p;
  take(result, "input-size", p.input_size);
  take(result, "resize", p.resize);
  if (result.count("mean")) p.mean = numbers("mean", result["mean"].as<std::string>());
  if (result.count("std")) p.std = numbers("std", result["std"].as<std::string>());
  pipeline::check_preprocess(p);
  return p;
}

void add_precision_options(cxxopts::Options& options) {
  options.add_options("Precision")(
      "precision",
      "forward arithmetic: fp32, tf32 (CUDA matrix units), bf16 (autocast, CUDA or CPU) or fp16 "
      "(autocast with dynamic loss scaling, CUDA)",
      cxxopts::value<std::string>()->default_value("fp32"))(
      "channels-last", "channels-last memory layout for the convolutions (weights and inputs)");
}

PrecisionChoice precision_options(const cxxopts::ParseResult& result, const std::string& device) {
  PrecisionChoice choice;
  choice.precision =
      train::precision_name(train::parse_precision(result["precision"].as<std::string>()));
  choice.channels_last = result.count("channels-last") > 0;
  train::check_precision(train::parse_precision(choice.precision), c10::Device(device));
  return choice;
}

void add_run_options(cxxopts::Options& options, const std::string& command) {
  const auto d = pipeline::RunConfig::defaults(command);
  const bool finetune = command == "finetune";
  using cxxopts::value;
  options.add_options(
      "", {{"model", finetune ? "pretrained TorchScript classifier" : "TorchScript classifier",
            value<std::string>()},
           {"out", "run folder", value<std::string>()},
           {"config",
            "a run's config.json (e.g. RUN/config.json): repeat that run; flags given here "
            "override it",
            value<std::string>()},
           {"resume", "continue the run in --out from its checkpoints/last.pt"}});
  if (!finetune)
    options.add_options("", {{"reinit", "start from fresh random weights (from scratch)"}});
  options.add_options(
      "Data",
      {{"data", "DIR (class sub-folders), cifar10:DIR, fashion-mnist:DIR or mnist:DIR",
        value<std::string>()},
       {"val-split",
        with_default("fraction of train held out for validation when the data has no val split "
                     "(0: none; finetune then decides by cross-validation)",
                     text(d.data.val_split)),
        value<double>()},
       {"batch-size",
        with_default("batch size (0 = auto: training images / 8, within [8, 32])",
                     text(d.data.batch_size)),
        value<std::int64_t>()},
       {"limit", "at most N images per split (quick runs; default: all)", value<size_t>()},
       {"workers", with_default("image decoding threads", text(d.data.workers)), value<size_t>()},
       {"no-augment",
        "no random crop / flip in training (nor --augment and --random-erasing)"},
       {"flip",
        with_default("probability of a horizontal flip in training (0 for digits, text, ...)",
                     text(d.data.flip)),
        value<double>()},
       {"min-crop-scale",
        with_default("smallest area fraction of the random resized crop",
                     text(d.data.min_crop_scale)),
        value<double>()},
       {"augment",
        with_default("per-image augmentation after the crop and flip, torchvision's ops and "
                     "magnitudes: none, trivial (TrivialAugmentWide: one op at a random "
                     "magnitude) or rand:N,M (RandAugment: N ops at magnitude bin M of 0-30, "
                     "e.g. rand:2,9)",
                     d.data.augment_policy),
        value<std::string>()},
       {"random-erasing",
        with_default("probability of erasing a random box of the normalised training image, as "
                     "torchvision's RandomErasing (2-33% of the area, aspect ratio 0.3-3.3; 0 = "
                     "off, 0.25 is usual)",
                     text(d.data.random_erasing)),
        value<double>()},
       {"erasing-value",
        with_default("what fills an erased box: 0 or random (per-pixel normal draws)",
                     d.data.erasing_value),
        value<std::string>()},
       {"strict", "a corrupt image is an error (default: skipped with a warning)"},
       {"sampler",
        with_default("training order: shuffle (a permutation per epoch) or balanced (draws with "
                     "replacement, every class equally likely; seeded like the shuffle)",
                     d.data.sampler),
        value<std::string>()}});
  add_preprocess_options(options);
  add_precision_options(options);
  if (finetune) {
    options.add_options(
        "Stage 1 (head on cached features)",
        {{"head-from",
          "first layer of the new head: the layers from it on are re-initialised and trained on "
          "the cached output of the layer below, e.g. classifier.6, classifier.0 or a convolution; "
          "auto (default) tries the classification layer, the whole classifier and the last conv "
          "block + classifier and keeps the best estimate (val, or k-fold CV on small data)",
          value<std::string>()},
         {"head-steps",
          with_default("optimizer steps (0 = auto: at least 500 and 10 epochs)",
                       text(d.head.steps)),
          value<std::int64_t>()},
         {"head-epochs", "epochs, instead of --head-steps", value<std::int64_t>()},
         {"head-solver",
          with_default("auto: the classification layer alone is fitted exactly (logistic "
                       "regression by L-BFGS, L2 chosen on validation), deeper heads by "
                       "--head-optimizer; gradient: every head by --head-optimizer",
                       d.head.solver),
          value<std::string>()},
         {"head-optimizer", with_default("optimizer spec", d.head.optimizer), value<std::string>()},
         {"head-schedule", with_default("schedule spec", d.head.schedule), value<std::string>()},
         {"head-batch-size",
          with_default("batch size (0 = auto: training images / 8, within [8, 64])",
                       text(d.head.batch_size)),
          value<std::int64_t>()},
         {"head-patience",
          with_default("early stopping epochs (0 = auto: 100 steps' worth)", text(d.head.patience)),
          value<std::int64_t>()}});
  }
  const std::string group = finetune ? "Stage 2 (fine-tuning)" : "Training";
  options.add_options(
      group,
      {{"epochs",
        with_default("epochs (0 = auto: about 300 optimizer steps, within [5, 40])",
                     text(d.fit.epochs)),
        value<std::int64_t>()},
       {"optimizer",
        with_default("name[:key=value,...] e.g. momentum:lr=0.01 or adam (torch's default lr) "
                     "(" +
                         join(optim::optimizer_names(), " ") + ")",
                     d.fit.optimizer),
        value<std::string>()},
       {"schedule",
        with_default("auto (3 warm-restart cycles) or a spec, e.g. cosine, step:step_size=10, "
                     "warmup:2+cosine, restarts:T_0=5 (see 'tlkit schedule --help')",
                     d.fit.schedule),
        value<std::string>()},
       {"schedule-per-batch", "step the schedule after every batch instead of every epoch"},
       {"monitor",
        with_default("the one validation metric for early stopping, best weights and the "
                     "exported model: val_loss, val_acc or val_balanced_acc (mean per-class "
                     "recall, for imbalanced classes)",
                     d.fit.monitor),
        value<std::string>()},
       {"patience",
        with_default("early stopping: epochs without improvement (0 = off, -1 = auto: 5, at "
                     "least 100 steps' worth)",
                     text(d.fit.patience)),
        value<std::int64_t>()},
       {"min-delta",
        with_default("smallest improvement of the monitor that counts", text(d.fit.min_delta)),
        value<double>()},
       {"val-every",
        with_default("validate every N epochs (and after the first and the last): for many "
                     "tiny epochs; patience still counts epochs",
                     text(d.fit.val_every)),
        value<std::int64_t>()},
       {"ema-decay",
        with_default("Polyak/EMA weight averaging decay (0 = off)", text(d.fit.ema_decay)),
        value<double>()},
       {"no-snapshots", "no snapshot at warm restarts (no ensemble)"},
       {"overfit-batches", "sanity check: train and validate on N batches only; should reach ~100%",
        value<std::int64_t>()},
       {"grad-clip", "clip the gradients at this threshold (default: off)", value<double>()},
       {"grad-clip-mode",
        with_default("what --grad-clip bounds: norm (the global L2 norm), value (each element) "
                     "or agc (adaptive, per unit: the threshold is the clip factor of the "
                     "weight's norm, as timm's)",
                     d.fit.grad_clip_mode),
        value<std::string>()},
       {"accumulate",
        with_default("gradient accumulation: batches summed per optimizer step (the step's "
                     "batch is batch size x N; 1 = off)",
                     text(d.fit.accumulate)),
        value<std::int64_t>()},
       {"decay-all",
        "weight decay (the optimizer's weight_decay, AdamW's default 0.01) on every parameter; by "
        "default biases and normalisation layers' weights (1-d parameters) train without it, as "
        "timm's and fastai's"},
       {"label-smoothing",
        with_default("label smoothing eps in [0, 1) of the training loss, as torch's "
                     "CrossEntropyLoss(label_smoothing=eps) (0 = off; 0.1 is usual)",
                     text(d.fit.label_smoothing)),
        value<double>()},
       {"class-weights",
        with_default("weights of the training loss per class: none, auto (n_images / (n_classes "
                     "x count), scikit-learn's balanced) or w1,w2,... in class-name order",
                     d.fit.class_weights),
        value<std::string>()},
       {"mixup",
        with_default("batch mixing, mixup: images and targets mixed with a flipped batch, "
                     "lambda ~ Beta(ALPHA, ALPHA) as timm's Mixup (0 = off; 0.2 is usual); only "
                     "image-level training mixes (train, finetune's stage 2; not stage 1 on "
                     "cached features); train_acc then counts the target with the larger share",
                     text(d.fit.mixup)),
        value<double>()},
       {"cutmix",
        with_default("batch mixing, cutmix: a box of the flipped batch pasted in, its area from "
                     "lambda ~ Beta(ALPHA, ALPHA), lambda corrected to the clipped box (0 = off; "
                     "1 is usual)",
                     text(d.fit.cutmix)),
        value<double>()},
       {"mix-prob",
        with_default("probability that a batch is mixed (with --mixup or --cutmix)",
                     text(d.fit.mix_prob)),
        value<double>()},
       {"mix-switch-prob",
        with_default("with both --mixup and --cutmix: probability of cutmix for a mixed batch",
                     text(d.fit.mix_switch_prob)),
        value<double>()},
       {"mix-off-epoch",
        with_default("mix in the first N epochs only (0 = every epoch)", text(d.fit.mix_off_epoch)),
        value<std::int64_t>()},
       {"on-nonfinite",
        with_default("a NaN/Inf loss or gradient (never applied): stop, skip the step, or "
                     "rollback (to the last good epoch's state, the learning rate halved)",
                     d.fit.on_nonfinite),
        value<std::string>()},
       {"batch-norm",
        with_default("batch norm of the trained layers: train (batch statistics, as "
                     "PyTorch's train()) or frozen (stored statistics, eval mode; scale and "
                     "shift still train); frozen layers' batch norms keep theirs either way",
                     d.fit.batch_norm),
        value<std::string>()},
       {"calibrate",
        with_default("calibration of the exported model: none, or temperature (one T fitted to "
                     "the NLL of softmax(logits / T) on held-out predictions: the val split, or "
                     "on small data the stage-2 folds' held-out images; divided into model.pt's "
                     "classification layer; accuracy unchanged, ECE before/after in results.md)",
                     d.calibrate),
        value<std::string>()},
       {"no-progress", "no progress bar"}});
  if (finetune) {
    options.add_options(
        group, {{"unfreeze-from", "first trainable layer, e.g. features.24 (default: every layer)",
                 value<std::string>()},
                {"lr-rules",
                 "per-layer lrs 'regex=lr,...' (0 = frozen); overrides --unfreeze-from/--lr-decay",
                 value<std::string>()},
                {"lr-decay",
                 with_default("lr x decay^k for the k-th parametrised layer below the head",
                              text(d.lr_decay)),
                 value<double>()},
                {"lr-floor",
                 with_default("freeze the layers whose lr would be under this fraction of the "
                              "top layer's (with the decay: the lowest layers of a deep network; "
                              "0 = train every layer)",
                              text(d.lr_floor)),
                 value<double>()},
                {"cv-folds",
                 "k-fold cross-validation for every choice (head, stage 2 length, exported "
                 "weights), then one fit on all images; default: 5 folds when validation is "
                 "small (a class with < 10 val images, or none), else the val split decides",
                 value<std::int64_t>()},
                {"no-cv-augment",
                 "on small data keep the configured augmentation (default: stage 2's folds also "
                 "train without it, and the final fit follows the better)"},
                {"no-cv", "never cross-validate: the val split decides (without one, the budgets "
                          "run to the end and the last weights are exported)"},
                {"baseline",
                 "scratch: also train the same network from random weights with stage 2's "
                 "budget and report it beside (never exported); default none",
                 value<std::string>()},
                {"baseline-optimizer",
                 "the baseline's optimizer spec (default: stage 2's at torch's default lr, "
                 "e.g. adam:lr=0.001; 10x stage 2's lr for SGD)",
                 value<std::string>()}});
  }
}

pipeline::RunConfig run_config(const cxxopts::ParseResult& result, const std::string& command,
                               const Common& common) {
  auto config = result.count("config")
                    ? pipeline::RunConfig::load(result["config"].as<std::string>())
                    : pipeline::RunConfig::defaults(command);
  if (config.command != command)
    throw UsageError("'" + result["config"].as<std::string>() + "' is the config of a '" +
                     config.command + "' run; use it with tlkit " + config.command);
  // A config names the run it came from: repeating it writes a new run, never over that one.
  if (result.count("config") && !result.count("out") && !result.count("resume"))
    throw UsageError("--config repeats the run in '" + config.out.string() +
                     "' and needs --out for the new run's folder (or --resume to continue that "
                     "run)");
  if (result.count("model")) config.model = result["model"].as<std::string>();
  if (result.count("out")) config.out = result["out"].as<std::string>();
  take(result, "data", config.data.source);
  if (config.model.empty()) throw UsageError("--model is required");
  if (config.data.source.empty()) throw UsageError("--data is required");
  if (config.out.empty()) throw UsageError("--out is required");
  config.resume = result.count("resume") > 0;
  if (result.count("reinit")) config.reinitialize = true;
  auto& d = config.data;
  take(result, "val-split", d.val_split);
  take(result, "batch-size", d.batch_size);
  take(result, "limit", d.limit);
  take(result, "workers", d.workers);
  if (result.count("no-augment")) d.augment = false;
  take(result, "flip", d.flip);
  take(result, "min-crop-scale", d.min_crop_scale);
  take(result, "augment", d.augment_policy);
  take(result, "random-erasing", d.random_erasing);
  take(result, "erasing-value", d.erasing_value);
  if (result.count("strict")) d.strict = true;
  take(result, "sampler", d.sampler);
  if (result.count("seed")) d.seed = common.seed;
  const auto preprocess = preprocess_options(result);
  if (preprocess.input_size) d.preprocess.input_size = preprocess.input_size;
  if (preprocess.resize) d.preprocess.resize = preprocess.resize;
  if (!preprocess.mean.empty()) d.preprocess.mean = preprocess.mean;
  if (!preprocess.std.empty()) d.preprocess.std = preprocess.std;
  auto& f = config.fit;
  take(result, "epochs", f.epochs);
  take(result, "optimizer", f.optimizer);
  take(result, "schedule", f.schedule);
  if (result.count("schedule-per-batch")) f.schedule_per_batch = true;
  take(result, "monitor", f.monitor);
  take(result, "patience", f.patience);
  take(result, "min-delta", f.min_delta);
  take(result, "val-every", f.val_every);
  take(result, "ema-decay", f.ema_decay);
  if (result.count("no-snapshots")) f.snapshots = false;
  take(result, "overfit-batches", f.overfit_batches);
  take(result, "grad-clip", f.grad_clip);
  take(result, "grad-clip-mode", f.grad_clip_mode);
  take(result, "label-smoothing", f.label_smoothing);
  take(result, "accumulate", f.accumulate);
  if (result.count("decay-all")) f.decay_all = true;
  take(result, "class-weights", f.class_weights);
  take(result, "mixup", f.mixup);
  take(result, "cutmix", f.cutmix);
  take(result, "mix-prob", f.mix_prob);
  take(result, "mix-switch-prob", f.mix_switch_prob);
  take(result, "mix-off-epoch", f.mix_off_epoch);
  take(result, "on-nonfinite", f.on_nonfinite);
  take(result, "batch-norm", f.batch_norm);
  take(result, "calibrate", config.calibrate);
  if (result.count("no-progress")) f.progress = false;
  if (result.count("device")) f.device = c10::Device(common.device);
  if (result.count("precision")) {
    f.precision =
        train::precision_name(train::parse_precision(result["precision"].as<std::string>()));
  }
  if (result.count("channels-last")) f.channels_last = true;
  if (command == "finetune") {
    take(result, "head-from", config.head.from);
    take(result, "head-steps", config.head.steps);
    take(result, "head-epochs", config.head.epochs);
    take(result, "head-patience", config.head.patience);
    take(result, "head-solver", config.head.solver);
    take(result, "head-optimizer", config.head.optimizer);
    take(result, "head-schedule", config.head.schedule);
    take(result, "head-batch-size", config.head.batch_size);
    take(result, "unfreeze-from", config.unfreeze_from);
    take(result, "lr-rules", config.lr_rules);
    take(result, "lr-decay", config.lr_decay);
    take(result, "lr-floor", config.lr_floor);
    take(result, "cv-folds", config.cv_folds);
    if (result.count("no-cv")) {
      if (result.count("cv-folds")) throw UsageError("--no-cv and --cv-folds contradict each other");
      config.cv_folds = 0;
    }
    if (result.count("no-cv-augment")) config.cv_augment = false;
    take(result, "baseline", config.baseline);
    take(result, "baseline-optimizer", config.baseline_optimizer);
  }
  config.validate();
  return config;
}

void print_run(const pipeline::RunResult& result, const std::filesystem::path& out) {
  if (!train::is_main_process()) return;  // data parallel: rank 0 reports for all
  std::cout << pipeline::format_results(result) << "\nRun folder: " << out.string()
            << " (config.json, model.pt, metrics.csv, summary.json, results.md, report.html, "
               "curves_*.png, confusion_matrix.png, top_losses.png, TensorBoard events)\n";
}

}  // namespace tlkit::cli
