// tlkit train: every layer trainable — training from scratch (--reinit) or full fine-tuning.
#include <tlkit/core/error.h>
#include <tlkit/pipeline/transfer.h>

#include "command.h"
#include "run_options.h"

namespace {

using namespace tlkit;

int run_train(int argc, char** argv) {
  cxxopts::Options options("tlkit train", "Train every layer of a TorchScript classifier on a dataset");
  options.add_options()("model", "TorchScript classifier (scripts/export_vgg16.py)", cxxopts::value<std::string>())
      ("reinit", "start from fresh random weights (training from scratch)");
  cli::add_data_options(options, 64);
  cli::add_fit_options(options, "Training", "momentum:lr=0.01", "cosine", 10);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  if (!cli::parse(options, argc, argv,
                  "tlkit train --model models/vgg_cifar.pt --data fashion-mnist:/usr/share/datasets/fashion-mnist "
                  "--out runs/pretrain --epochs 3 --optimizer adam:lr=1e-3",
                  result))
    return cli::kOk;
  const auto common = cli::apply_common(result);
  cli::require(result, {"model", "data", "out"});
  pipeline::TrainOptions train;
  train.model = result["model"].as<std::string>();
  train.data = cli::data_options(result, common);
  train.fit = cli::fit_options(result, common);
  train.out = result["out"].as<std::string>();
  train.reinitialize = result.count("reinit") > 0;
  train.resume = result.count("resume") > 0;
  cli::print_run(pipeline::train(train), train.out);
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("train", "train all layers (from scratch or full fine-tuning)", run_train);

}  // namespace
