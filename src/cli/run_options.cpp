#include "run_options.h"

#include <iostream>

#include <tlkit/core/error.h>
#include <tlkit/schedule/spec.h>

namespace tlkit::cli {

void add_data_options(cxxopts::Options& options, std::int64_t default_batch) {
  options.add_options("Data")
      ("data", "DIR (class sub-folders), cifar10:DIR, fashion-mnist:DIR or mnist:DIR", cxxopts::value<std::string>())
      ("val-split", "fraction of train held out for validation when the data has no val split",
       cxxopts::value<double>()->default_value("0.2"))
      ("batch-size", "batch size", cxxopts::value<std::int64_t>()->default_value(std::to_string(default_batch)))
      ("limit", "at most N images per split (quick runs; 0 = all)", cxxopts::value<size_t>()->default_value("0"))
      ("workers", "image decoding threads", cxxopts::value<size_t>()->default_value("2"))
      ("no-augment", "no random crop / flip in training")
      ("flip", "probability of a horizontal flip in training (0 for digits, text, ...)",
       cxxopts::value<double>()->default_value("0.5"))
      ("min-crop-scale", "smallest area fraction of the random resized crop",
       cxxopts::value<double>()->default_value("0.5"))
      ("strict", "a corrupt image is an error (default: skipped with a warning)");
}

void add_fit_options(cxxopts::Options& options, const std::string& group, const std::string& default_optimizer,
                     const std::string& default_schedule, std::int64_t default_epochs) {
  options.add_options(group)
      ("epochs", "epochs", cxxopts::value<std::int64_t>()->default_value(std::to_string(default_epochs)))
      ("optimizer", "name[:key=value,...] e.g. momentum:lr=0.01 or adam:lr=1e-3 (sgd momentum nesterov adagrad "
                    "rmsprop adam adamw)", cxxopts::value<std::string>()->default_value(default_optimizer))
      ("schedule", "auto (3 warm-restart cycles) or a spec, e.g. cosine, step:step_size=10, warmup:2+cosine, "
                   "restarts:T_0=5 (see 'tlkit schedule --help')",
       cxxopts::value<std::string>()->default_value(default_schedule))
      ("schedule-per-batch", "step the schedule after every batch instead of every epoch")
      ("patience", "early stopping: epochs without val-loss improvement (0 = off)",
       cxxopts::value<std::int64_t>()->default_value("5"))
      ("min-delta", "early stopping: smallest improvement that counts", cxxopts::value<double>()->default_value("0"))
      ("ema-decay", "Polyak/EMA weight averaging decay (0 = off)", cxxopts::value<double>()->default_value("0.999"))
      ("no-snapshots", "no snapshot at warm restarts (no ensemble)")
      ("overfit-batches", "sanity check: train and validate on N batches only; should reach ~100%",
       cxxopts::value<std::int64_t>()->default_value("0"))
      ("grad-clip", "clip the gradient norm (0 = off)", cxxopts::value<double>()->default_value("0"))
      ("no-progress", "no progress bar")
      ("out", "run folder", cxxopts::value<std::string>())
      ("resume", "continue the run in --out from its checkpoints/last.pt");
}

pipeline::DataOptions data_options(const cxxopts::ParseResult& result, const Common& common) {
  require(result, {"data"});
  pipeline::DataOptions data;
  data.source = result["data"].as<std::string>();
  data.val_split = result["val-split"].as<double>();
  data.batch_size = result["batch-size"].as<std::int64_t>();
  data.limit = result["limit"].as<size_t>();
  data.workers = result["workers"].as<size_t>();
  data.augment = !result.count("no-augment");
  data.min_crop_scale = result["min-crop-scale"].as<double>();
  data.flip = result["flip"].as<double>();
  TLKIT_CHECK(data.flip >= 0 && data.flip <= 1, "--flip must be in [0, 1], got ", data.flip);
  data.strict = result.count("strict") > 0;
  data.seed = common.seed;
  TLKIT_CHECK(data.min_crop_scale > 0 && data.min_crop_scale <= 1, "--min-crop-scale must be in (0, 1], got ",
              data.min_crop_scale);
  return data;
}

pipeline::FitOptions fit_options(const cxxopts::ParseResult& result, const Common& common) {
  pipeline::FitOptions fit;
  fit.epochs = result["epochs"].as<std::int64_t>();
  fit.optimizer = result["optimizer"].as<std::string>();
  fit.schedule = result["schedule"].as<std::string>();
  fit.schedule_per_batch = result.count("schedule-per-batch") > 0;
  fit.patience = result["patience"].as<std::int64_t>();
  fit.min_delta = result["min-delta"].as<double>();
  fit.ema_decay = result["ema-decay"].as<double>();
  fit.snapshots = !result.count("no-snapshots");
  fit.overfit_batches = result["overfit-batches"].as<std::int64_t>();
  fit.grad_clip = result["grad-clip"].as<double>();
  fit.progress = !result.count("no-progress");
  fit.device = c10::Device(common.device);
  TLKIT_CHECK(fit.epochs > 0, "--epochs must be positive, got ", fit.epochs);
  TLKIT_CHECK(fit.patience >= 0, "--patience must be >= 0, got ", fit.patience);
  TLKIT_CHECK(fit.ema_decay >= 0 && fit.ema_decay < 1, "--ema-decay must be in [0, 1), got ", fit.ema_decay);
  return fit;
}

void print_run(const pipeline::RunResult& result, const std::filesystem::path& out) {
  std::cout << pipeline::format_results(result) << "\nRun folder: " << out.string()
            << " (model.pt, metrics.csv, summary.json, results.md, curves_*.png, TensorBoard events)\n";
}

}  // namespace tlkit::cli
