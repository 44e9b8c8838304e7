// tlkit finetune: the two-stage transfer pipeline (features -> head, then fine-tuning).
#include <tlkit/core/interrupt.h>
#include <tlkit/pipeline/transfer.h>

#include "command.h"
#include "launch.h"
#include "run_options.h"

namespace {

using namespace tlkit;

int run_finetune(int argc, char** argv) {
  cxxopts::Options options(
      "tlkit finetune",
      "Transfer a pretrained classifier to your images: stage 1 trains a new head on cached\n"
      "features of the frozen backbone; stage 2 fine-tunes the upper layers with per-layer\n"
      "learning rates, early stopping, snapshot ensembles and EMA weights.");
  cli::add_run_options(options, "finetune");
  cli::add_parallel_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  if (!cli::parse(
          options, argc, argv,
          "tlkit finetune --model models/vgg16.pt --data my_photos/ --out runs/photos --epochs 9",
          result))
    return cli::kOk;
  if (const auto code = cli::launch_if_asked(result, argc, argv)) return *code;
  auto common = cli::apply_common(result);
  common.device = cli::join_process_group(result, common.device);
  install_interrupt_handlers();  // Ctrl-C: stop after a step, keep a checkpoint
  const auto config = cli::run_config(result, "finetune", common);
  cli::print_run(pipeline::finetune(config), config.out);
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("finetune", "two-stage transfer: head on cached features, then fine-tuning",
                       run_finetune);

}  // namespace
