// tlkit extract: run a frozen backbone once over a dataset and write features.npy, labels.npy and
// manifest.json (see tlkit/pipeline/extract.h).

#include <iostream>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/data/dataset.h>
#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/train/network.h>
#include <tlkit/train/precision.h>

#include "command.h"
#include "run_options.h"

namespace {

using namespace tlkit;

const char* const kExample =
    "tlkit extract --model models/vgg16.pt --data photos/ --out features/ --split all --batch-size "
    "32";

int run(int argc, char** argv) {
  cxxopts::Options options(
      "tlkit extract",
      "Features of a frozen backbone to features.npy / labels.npy / manifest.json");
  options.add_options()("model", "TorchScript model file (scripts/export_vgg16.py)",
                        cxxopts::value<std::string>())(
      "data", "Images: DIR (one sub-folder per class), cifar10:DIR, fashion-mnist:DIR or mnist:DIR",
      cxxopts::value<std::string>())("out", "Output folder", cxxopts::value<std::string>())(
      "layer", "Layer whose output is the feature (default: the head's input, e.g. classifier.4)",
      cxxopts::value<std::string>())("split",
                                     "train, val, test, all or auto (test, else val, else train)",
                                     cxxopts::value<std::string>()->default_value("train"))(
      "val-split", "Fraction of train held out as val when the source has no val set",
      cxxopts::value<double>()->default_value("0"))(
      "batch-size", "Images per forward pass", cxxopts::value<std::size_t>()->default_value("64"))(
      "workers", "Image decoding threads", cxxopts::value<std::size_t>()->default_value("2"))(
      "limit", "At most this many images (0 = all)",
      cxxopts::value<std::size_t>()->default_value("0"))(
      "strict", "A corrupt image is an error instead of a skip");
  cli::add_preprocess_options(options);
  cli::add_precision_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult args;
  if (!cli::parse(options, argc, argv, kExample, args)) return cli::kOk;
  const auto common = cli::apply_common(args);
  install_interrupt_handlers();  // Ctrl-C: stop between batches, no partial files
  cli::require(args, {"model", "data", "out"});
  auto model = pipeline::load_model(args["model"].as<std::string>(), cli::preprocess_options(args),
                                    c10::Device(common.device));
  data::SourceOptions source_options;
  source_options.val_split = args["val-split"].as<double>();
  source_options.seed = common.seed;
  source_options.strict = args.count("strict") > 0;
  const auto source = args["data"].as<std::string>();
  data::check_output_outside_data(args["out"].as<std::string>(), source);
  const auto split = args["split"].as<std::string>();
  const auto dataset = pipeline::select_split(data::open_source(source, source_options), split);

  pipeline::ExtractOptions extract;
  if (args.count("layer")) extract.layer = args["layer"].as<std::string>();
  extract.batch_size = args["batch-size"].as<std::size_t>();
  extract.workers = args["workers"].as<std::size_t>();
  extract.limit = args["limit"].as<std::size_t>();
  extract.device = c10::Device(common.device);
  extract.source = source;
  extract.strict = source_options.strict;
  extract.split = split;
  const auto precision = cli::precision_options(args, common.device);
  extract.precision = precision.precision;
  extract.channels_last = precision.channels_last;
  {
    train::ScriptNetwork network(model.module());
    train::check_bf16_convolutions(network, train::parse_precision(extract.precision),
                                   extract.device);
  }
  // The output folder is tlkit's and locked; an earlier extraction there is set aside until
  // this one is complete.
  RunFolder folder(args["out"].as<std::string>(), "extract");
  folder.remove_stale_temporaries();  // a killed extraction's partial files
  folder.start_afresh();
  const auto result =
      pipeline::extract_features(model, dataset, args["out"].as<std::string>(), extract);
  folder.mark_finished();
  std::cout << "wrote " << result.rows << " x " << result.dim << " features (layer " << result.layer
            << ", " << dataset->describe() << ") to " << result.dir.string() << " in "
            << result.seconds << " s\n";
  return cli::kOk;
}

}  // namespace

TLKIT_REGISTER_COMMAND("extract",
                       "features of a frozen backbone to features.npy, labels.npy, manifest.json",
                       run);
