// tlkit lr-find: the learning-rate range test — loss against an exponentially growing lr, the
// suggested lr, a CSV and a plot.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <torch/optim/sgd.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/plot.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/data/dataset.h>
#include <tlkit/data/loader.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/optim/factory.h>
#include <tlkit/optim/settings.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/lr_find.h>
#include <tlkit/train/loader_source.h>

#include "command.h"
#include "run_options.h"

namespace fs = std::filesystem;

namespace {

using namespace tlkit;

int run_lr_find(int argc, char** argv) {
  cxxopts::Options options("tlkit lr-find", "LR range test: which learning rate to use?");
  options.add_options()("model", "a TorchScript classifier", cxxopts::value<std::string>())(
      "data", "DIR, cifar10:DIR, fashion-mnist:DIR or mnist:DIR", cxxopts::value<std::string>())(
      "optimizer", "optimizer spec (its lr is replaced)",
      cxxopts::value<std::string>()->default_value("momentum"))(
      "unfreeze-from", "train only from this layer on (default: every layer)",
      cxxopts::value<std::string>()->default_value(""))(
      "start-lr", "first lr", cxxopts::value<double>()->default_value("1e-7"))(
      "end-lr", "last lr", cxxopts::value<double>()->default_value("10"))(
      "steps", "batches", cxxopts::value<std::int64_t>()->default_value("100"))(
      "batch-size", "batch size", cxxopts::value<size_t>()->default_value("32"))(
      "workers", "decoding threads", cxxopts::value<size_t>()->default_value("2"))(
      "out", "folder for lr_find.csv and lr_find.png: new, empty or an earlier lr-find's",
      cxxopts::value<std::string>()->default_value("lr-find"));
  cli::add_preprocess_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  if (!cli::parse(options, argc, argv,
                  "tlkit lr-find --model models/vgg16.pt --data my_photos/ --out runs/lr", result))
    return cli::kOk;
  const auto common = cli::apply_common(result);
  cli::require(result, {"model", "data"});
  data::check_output_outside_data(result["out"].as<std::string>(),
                                  result["data"].as<std::string>());
  const auto device = c10::Device(common.device);
  auto model = pipeline::load_model(result["model"].as<std::string>(),
                                    cli::preprocess_options(result), device);
  data::SourceOptions source_options;
  source_options.seed = common.seed;
  auto splits = data::open_source(result["data"].as<std::string>(), source_options);
  pipeline::warn_if_upscaled(*splits.train, model);
  const auto num_classes = static_cast<std::int64_t>(splits.train->classes().size());
  if (model.num_classes() != num_classes) model.replace_head(num_classes, splits.train->classes());
  model.unfreeze_all();
  if (!result["unfreeze-from"].as<std::string>().empty())
    model.unfreeze_from(result["unfreeze-from"].as<std::string>());
  pipeline::DataOptions loading;
  loading.batch_size = static_cast<std::int64_t>(result["batch-size"].as<size_t>());
  loading.seed = common.seed;
  loading.workers = result["workers"].as<size_t>();
  const auto source =
      pipeline::make_loader(splits.train, pipeline::eval_transform(model), loading, true);
  pipeline::LrFindOptions find;
  find.start_lr = result["start-lr"].as<double>();
  find.end_lr = result["end-lr"].as<double>();
  find.steps = result["steps"].as<std::int64_t>();
  find.device = device;
  // The test sets the lr at every step: the spec's lr is replaced by the start lr.
  auto spec = optim::parse_optimizer_settings(result["optimizer"].as<std::string>());
  spec.settings.lr = find.start_lr;
  auto optimizer = pipeline::build_optimizer(optim::format_optimizer_settings(spec),
                                             model::single_param_group(model, find.start_lr));
  train::ScriptNetwork network(model.module());
  const auto found = pipeline::lr_range_test(network, *optimizer, *source, find);
  TLKIT_CHECK(!found.lrs.empty(),
              "the loss was not finite from the first step; check the data and the model");

  const fs::path out = result["out"].as<std::string>();
  RunFolder folder(out, "lr-find");
  folder.remove_stale_temporaries();
  folder.start_afresh();
  std::string csv = "lr,loss,smoothed_loss\n";
  char line[96];
  for (size_t i = 0; i < found.lrs.size(); ++i) {
    std::snprintf(line, sizeof(line), "%.6g,%.6g,%.6g\n", found.lrs[i], found.losses[i],
                  found.smoothed[i]);
    csv += line;
  }
  write_file_atomic(out / "lr_find.csv", csv);
  write_line_plot(out / "lr_find.png", {{"smoothed loss", found.lrs, found.smoothed}},
                  PlotOptions()
                      .with_title("LR range test")
                      .with_labels("learning rate", "loss")
                      .with_log(true, false));
  std::printf("suggested lr %.3g (steepest descent of the loss); lowest loss at lr %.3g%s\n",
              found.suggested_lr, found.min_loss_lr,
              found.diverged ? "; the loss diverged after it" : "");
  folder.mark_finished();
  std::printf("wrote %s and %s\n", (out / "lr_find.csv").c_str(), (out / "lr_find.png").c_str());
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("lr-find", "LR range test: loss vs lr, suggested lr, plot", run_lr_find);

}  // namespace
