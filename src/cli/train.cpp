// tlkit train: every layer trainable — training from scratch (--reinit) or full fine-tuning.
#include <tlkit/core/interrupt.h>
#include <tlkit/pipeline/transfer.h>

#include "command.h"
#include "launch.h"
#include "run_options.h"

namespace {

using namespace tlkit;

int run_train(int argc, char** argv) {
  cxxopts::Options options("tlkit train",
                           "Train every layer of a TorchScript classifier on a dataset");
  cli::add_run_options(options, "train");
  cli::add_parallel_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  if (!cli::parse(options, argc, argv,
                  "tlkit train --model models/vgg_cifar.pt --data "
                  "fashion-mnist:/usr/share/datasets/fashion-mnist "
                  "--out runs/pretrain --epochs 3 --optimizer adam:lr=1e-3",
                  result))
    return cli::kOk;
  if (const auto code = cli::launch_if_asked(result, argc, argv)) return *code;
  auto common = cli::apply_common(result);
  common.device = cli::join_process_group(result, common.device);
  install_interrupt_handlers();  // Ctrl-C: stop after a step, keep a checkpoint
  const auto config = cli::run_config(result, "train", common);
  cli::print_run(pipeline::train(config), config.out);
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("train", "train all layers (from scratch or full fine-tuning)", run_train);

}  // namespace
