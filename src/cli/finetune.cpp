// tlkit finetune: the two-stage transfer pipeline (features -> head, then fine-tuning).
#include <tlkit/core/error.h>
#include <tlkit/pipeline/transfer.h>

#include "command.h"
#include "run_options.h"

namespace {

using namespace tlkit;

int run_finetune(int argc, char** argv) {
  cxxopts::Options options("tlkit finetune",
                           "Transfer a pretrained classifier to your images: stage 1 trains a new head on cached\n"
                           "features of the frozen backbone; stage 2 fine-tunes the upper layers with per-layer\n"
                           "learning rates, early stopping, snapshot ensembles and EMA weights.");
  options.add_options()("model", "pretrained TorchScript classifier", cxxopts::value<std::string>());
  cli::add_data_options(options, 32);
  options.add_options("Stage 1 (head on cached features)")
      ("head-from", "first layer of the new head: the layers from it on are re-initialised and trained on the "
                    "cached output of the layer below (default: the classification layer only; e.g. classifier.0 "
                    "or a convolution when your images are unlike the pretraining data)",
       cxxopts::value<std::string>()->default_value(""))
      ("head-epochs", "epochs", cxxopts::value<std::int64_t>()->default_value("30"))
      ("head-optimizer", "optimizer spec", cxxopts::value<std::string>()->default_value("adam:lr=0.001"))
      ("head-schedule", "schedule spec", cxxopts::value<std::string>()->default_value("cosine"))
      ("head-batch-size", "batch size", cxxopts::value<std::int64_t>()->default_value("64"));
  cli::add_fit_options(options, "Stage 2 (fine-tuning)", "momentum:lr=0.01", "auto", 9);
  options.add_options("Stage 2 (fine-tuning)")
      ("unfreeze-from", "first trainable layer, e.g. features.24 (default: top third of the layers)",
       cxxopts::value<std::string>()->default_value(""))
      ("lr-rules", "per-layer lrs 'regex=lr,...' (0 = frozen); overrides --unfreeze-from/--lr-decay",
       cxxopts::value<std::string>()->default_value(""))
      ("lr-decay", "lr x decay^k for the k-th layer below the head", cxxopts::value<double>()->default_value("0.5"));
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  if (!cli::parse(options, argc, argv,
                  "tlkit finetune --model models/vgg16.pt --data my_photos/ --out runs/photos --epochs 9", result))
    return cli::kOk;
  const auto common = cli::apply_common(result);
  cli::require(result, {"model", "data", "out"});
  pipeline::FinetuneOptions finetune;
  finetune.model = result["model"].as<std::string>();
  finetune.data = cli::data_options(result, common);
  finetune.fine = cli::fit_options(result, common);
  finetune.out = result["out"].as<std::string>();
  finetune.head_from = result["head-from"].as<std::string>();
  finetune.head_epochs = result["head-epochs"].as<std::int64_t>();
  finetune.head_optimizer = result["head-optimizer"].as<std::string>();
  finetune.head_schedule = result["head-schedule"].as<std::string>();
  finetune.head_batch_size = result["head-batch-size"].as<std::int64_t>();
  finetune.unfreeze_from = result["unfreeze-from"].as<std::string>();
  finetune.lr_rules = result["lr-rules"].as<std::string>();
  finetune.lr_decay = result["lr-decay"].as<double>();
  finetune.resume = result.count("resume") > 0;
  TLKIT_CHECK(finetune.head_epochs > 0, "--head-epochs must be positive");
  TLKIT_CHECK(finetune.lr_decay > 0 && finetune.lr_decay <= 1, "--lr-decay must be in (0, 1], got ", finetune.lr_decay);
  cli::print_run(pipeline::finetune(finetune), finetune.out);
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("finetune", "two-stage transfer: head on cached features, then fine-tuning", run_finetune);

}  // namespace
