// tlkit bench: optimizers x schedules on a test problem or any TorchScript classifier, with the
// lr tuned on a validation split (see tlkit/pipeline/bench.h).

#include <iostream>

#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/strings.h>
#include <tlkit/pipeline/bench.h>
#include <tlkit/pipeline/problems.h>
#include <tlkit/train/distributed.h>

#include "command.h"
#include "launch.h"
#include "run_options.h"

namespace {

using namespace tlkit;

const char* const kExample =
    "tlkit bench --problem fmnist_2c2d --optimizers sgd,momentum,adam --schedules constant,cosine "
    "--epochs 10 --seeds 3 --out bench/fmnist";

// "step:step_size=10,gamma=0.1,cosine" -> {"step:step_size=10,gamma=0.1", "cosine"}: a piece with
// '=' but no ':' continues the spec before it.
std::vector<std::string> split_specs(const std::string& text) {
  std::vector<std::string> specs;
  for (const auto& piece : split_trimmed(text, ',')) {
    if (piece.empty()) continue;
    const bool continues = piece.find('=') != std::string::npos &&
                           piece.find(':') == std::string::npos && !specs.empty();
    if (continues) {
      specs.back() += "," + piece;
    } else {
      specs.push_back(piece);
    }
  }
  return specs;
}

int run(int argc, char** argv) {
  cxxopts::Options options("tlkit bench",
                           "Compare optimizers and schedules on a test problem, the lr tuned on a "
                           "validation split, with fresh seeds for the final runs");
  std::string problems = join(pipeline::test_problem_names(), ", ");
  options.add_options()("problem", "A built-in test problem: " + problems,
                        cxxopts::value<std::string>())(
      "model", "Or any TorchScript classifier (re-initialised per seed)",
      cxxopts::value<std::string>())("keep-weights",
                                     "With --model: start every run from the file's weights")(
      "data",
      "cifar10:DIR, fashion-mnist:DIR, mnist:DIR or an image folder with test/ (default: "
      "the problem's)",
      cxxopts::value<std::string>())("optimizers", "Comma-separated optimizer specs",
                                     cxxopts::value<std::string>()->default_value(
                                         "sgd,momentum,nesterov,adagrad,rmsprop,adam,adamw"))(
      "schedules", "Comma-separated schedule specs (see tlkit schedule --help)",
      cxxopts::value<std::string>()->default_value("constant,step,cosine"))(
      "epochs", "Epochs per final run (0 = the problem's: 100 for DeepOBS's, 10 for a model)",
      cxxopts::value<std::int64_t>()->default_value("0"))(
      "tune-epochs", "Epochs per tuning run (0 = --epochs)",
      cxxopts::value<std::int64_t>()->default_value("0"))(
      "seeds", "Final runs (fresh seeds) per optimizer x schedule",
      cxxopts::value<std::int64_t>()->default_value("3"))(
      "tune-seeds", "Runs per lr of the grid", cxxopts::value<std::int64_t>()->default_value("1"))(
      "lr-grid",
      "auto (each optimizer's torch default lr x 0.1, 1, 10), LO:HI:PER_DECADE (e.g. 1e-4:1:3) "
      "or values (1e-3,1e-2)",
      cxxopts::value<std::string>()->default_value("auto"))(
      "max-extensions", "Grid extensions past an edge where the best lr sits, per side",
      cxxopts::value<std::int64_t>()->default_value("3"))(
      "lr", "Fixed lr per optimizer, not tuned: adam=1e-3,sgd=0.1",
      cxxopts::value<std::string>()->default_value(""))(
      "target", "Validation accuracy for time-to-target (-1 = the problem's, 0 = none)",
      cxxopts::value<double>()->default_value("-1"))(
      "val-split", "Fraction of the training data held out for tuning",
      cxxopts::value<double>()->default_value("0.1"))(
      "test-split",
      "For data without a test split: this fraction of the training images becomes it",
      cxxopts::value<double>()->default_value("0"))(
      "limit", "At most this many images per split (stratified; 0 = all)",
      cxxopts::value<std::size_t>()->default_value("0"))(
      "batch-size", "Batch size (0 = the problem's: 128 for DeepOBS's, 64 for a model)",
      cxxopts::value<std::int64_t>()->default_value("0"))(
      "workers", "Image decoding threads", cxxopts::value<std::size_t>()->default_value("2"))(
      "max-memory-mb", "Hold the splits in memory up to this size, else stream them",
      cxxopts::value<std::size_t>()->default_value("4096"))("out", "Output folder",
                                                            cxxopts::value<std::string>())(
      "resume", "Continue an interrupted bench in --out, keeping its finished runs")(
      "progress", "Show a progress bar per epoch")(
      "label-smoothing",
      "Label smoothing eps in [0, 1) of the training loss, as torch's "
      "CrossEntropyLoss(label_smoothing=eps) (0 = off)",
      cxxopts::value<double>()->default_value("0"))(
      "class-weights",
      "Weights of the training loss per class: none, auto (n_images / (n_classes x count)) or "
      "w1,w2,...",
      cxxopts::value<std::string>()->default_value("none"))(
      "sampler",
      "Training order: shuffle, or balanced (draws with replacement, every class equally likely)",
      cxxopts::value<std::string>()->default_value("shuffle"))(
      "accumulate", "Gradient accumulation: batches summed per optimizer step (1 = off)",
      cxxopts::value<std::int64_t>()->default_value("1"))(
      "decay-all",
      "Weight decay on every parameter (default: biases and normalisation weights without it, "
      "as timm's and fastai's)")(
      "grad-clip", "Clip the gradients at this threshold (0 = off)",
      cxxopts::value<double>()->default_value("0"))(
      "grad-clip-mode", "What --grad-clip bounds: norm, value or agc",
      cxxopts::value<std::string>()->default_value("norm"))(
      "mixup",
      "Batch mixing, mixup: images and targets mixed with a flipped batch, lambda ~ "
      "Beta(ALPHA, ALPHA) as timm's Mixup (0 = off; 0.2 is usual); train_acc then counts the "
      "target with the larger share",
      cxxopts::value<double>()->default_value("0"))(
      "cutmix",
      "Batch mixing, cutmix: a box of the flipped batch pasted in, lambda ~ Beta(ALPHA, ALPHA) "
      "corrected to the clipped box (0 = off; 1 is usual)",
      cxxopts::value<double>()->default_value("0"))(
      "mix-prob", "Probability that a batch is mixed",
      cxxopts::value<double>()->default_value("1"))(
      "mix-switch-prob", "With both --mixup and --cutmix: probability of cutmix",
      cxxopts::value<double>()->default_value("0.5"))(
      "mix-off-epoch", "Mix in the first N epochs only (0 = every epoch)",
      cxxopts::value<std::int64_t>()->default_value("0"))(
      "augment",
      "Per-image augmentation of the training images, torchvision's ops and magnitudes: none, "
      "trivial (TrivialAugmentWide) or rand:N,M (RandAugment: N ops at magnitude bin M of 0-30, "
      "e.g. rand:2,9); splits held in memory only",
      cxxopts::value<std::string>()->default_value("none"))(
      "random-erasing",
      "Probability of erasing a random box of the normalised training image, as torchvision's "
      "RandomErasing (0 = off, 0.25 is usual); splits held in memory only",
      cxxopts::value<double>()->default_value("0"))(
      "erasing-value", "What fills an erased box: 0 or random (per-pixel normal draws)",
      cxxopts::value<std::string>()->default_value("0"));
  cli::add_preprocess_options(options);
  cli::add_parallel_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult args;
  if (!cli::parse(options, argc, argv, kExample, args)) return cli::kOk;
  if (const auto code = cli::launch_if_asked(args, argc, argv)) return *code;
  auto common = cli::apply_common(args);
  common.device = cli::join_process_group(args, common.device);
  install_interrupt_handlers();  // Ctrl-C: stop after a step, keep a checkpoint
  cli::require(args, {"out"});
  if (!args.count("problem") && !args.count("model"))
    throw cli::UsageError("give --problem (" + problems + ") or --model M.pt");

  pipeline::BenchConfig config;
  if (args.count("problem")) config.problem = args["problem"].as<std::string>();
  if (args.count("model")) config.model = args["model"].as<std::string>();
  config.keep_weights = args.count("keep-weights") > 0;
  if (args.count("data")) config.data = args["data"].as<std::string>();
  config.preprocess = cli::preprocess_options(args);
  config.optimizers = split_specs(args["optimizers"].as<std::string>());
  config.schedules = split_specs(args["schedules"].as<std::string>());
  config.epochs = args["epochs"].as<std::int64_t>();
  config.tune_epochs = args["tune-epochs"].as<std::int64_t>();
  config.seeds = args["seeds"].as<std::int64_t>();
  config.tune_seeds = args["tune-seeds"].as<std::int64_t>();
  config.lr_grid = args["lr-grid"].as<std::string>();
  config.max_extensions = args["max-extensions"].as<std::int64_t>();
  config.lr = pipeline::parse_lr_overrides(args["lr"].as<std::string>());
  config.target = args["target"].as<double>();
  config.val_split = args["val-split"].as<double>();
  config.test_split = args["test-split"].as<double>();
  config.limit = args["limit"].as<std::size_t>();
  config.batch_size = args["batch-size"].as<std::int64_t>();
  config.workers = args["workers"].as<std::size_t>();
  config.max_memory_mb = args["max-memory-mb"].as<std::size_t>();
  config.seed = common.seed;
  config.device = c10::Device(common.device);
  config.out = args["out"].as<std::string>();
  config.resume = args.count("resume") > 0;
  config.progress = args.count("progress") > 0;
  config.label_smoothing = args["label-smoothing"].as<double>();
  config.class_weights = args["class-weights"].as<std::string>();
  config.sampler = args["sampler"].as<std::string>();
  config.accumulate = args["accumulate"].as<std::int64_t>();
  config.decay_all = args.count("decay-all") > 0;
  config.grad_clip = args["grad-clip"].as<double>();
  config.grad_clip_mode = args["grad-clip-mode"].as<std::string>();
  config.mixup = args["mixup"].as<double>();
  config.cutmix = args["cutmix"].as<double>();
  config.mix_prob = args["mix-prob"].as<double>();
  config.mix_switch_prob = args["mix-switch-prob"].as<double>();
  config.mix_off_epoch = args["mix-off-epoch"].as<std::int64_t>();
  config.augment = args["augment"].as<std::string>();
  config.random_erasing = args["random-erasing"].as<double>();
  config.erasing_value = args["erasing-value"].as<std::string>();

  const auto summary = pipeline::bench(config);
  if (!train::is_main_process()) return cli::kOk;  // data parallel: rank 0 reports for all
  if (!summary.best.empty()) std::cout << "best: " << summary.best << "\n";
  std::cout << "report: " << summary.report.string() << " (" << summary.runs.size()
            << " runs; results.csv, results.json, plots in " << config.out.string() << ")\n";
  return cli::kOk;
}

}  // namespace

TLKIT_REGISTER_COMMAND("bench", "compare optimizers x schedules, lr tuned on validation", run);
