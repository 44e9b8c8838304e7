// tlkit evaluate: accuracy, top-k, per-class precision / recall / F1, macro F1, balanced accuracy,
// NLL, calibration error and the confusion matrix of a model, of the snapshot ensemble of a run,
// or of an ensemble of models or runs (the members' softmax outputs averaged); the same as JSON
// with --json; the most confused pairs of classes, and with --out DIR the confusion matrix and the
// top losses as pictures. --tta averages the softmax over views of each image (flip, five-crop,
// ten-crop).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>

#include <torch/csrc/jit/api/module.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/script_checks.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/ensemble.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/pipeline/interpretation.h>
#include <tlkit/pipeline/tta.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/classification_report.h>
#include <tlkit/train/interpretation.h>
#include <tlkit/train/loader_source.h>
#include <tlkit/train/metrics.h>
#include <tlkit/train/precision.h>
#include <tlkit/train/tta_network.h>

#include "command.h"
#include "run_options.h"
#include "tta_options.h"

namespace fs = std::filesystem;

namespace {

using namespace tlkit;

int run_evaluate(int argc, char** argv) {
  cxxopts::Options options("tlkit evaluate",
                           "Accuracy, top-k, per-class precision/recall/F1, macro F1, balanced "
                           "accuracy, NLL, expected calibration error (15 bins) and the confusion "
                           "matrix on a dataset (definitions as scikit-learn's)");
  options.add_options()("model",
                        "a TorchScript classifier (e.g. RUN/model.pt); several (--model a.pt "
                        "--model b.pt, or --model a.pt b.pt): their ensemble",
                        cxxopts::value<std::vector<std::string>>())(
      "ensemble",
      "run folders: one evaluates the average of its snapshots/; several, the ensemble of "
      "their snapshots (or model.pt where a run has none)",
      cxxopts::value<std::vector<std::string>>())(
      "data", "DIR, cifar10:DIR, fashion-mnist:DIR or mnist:DIR", cxxopts::value<std::string>())(
      "split", "auto (test, else val, else train), train, val, test or all",
      cxxopts::value<std::string>()->default_value("auto"))(
      "batch-size", "batch size", cxxopts::value<size_t>()->default_value("64"))(
      "limit", "at most N images (0 = all)", cxxopts::value<size_t>()->default_value("0"))(
      "workers", "decoding threads", cxxopts::value<size_t>()->default_value("2"))(
      "top", "K of the top-K accuracy (at most the number of classes)",
      cxxopts::value<std::int64_t>()->default_value("5"))(
      "json",
      "also write every metric to FILE as JSON (accuracy, top<K>, macro_f1, "
      "balanced_accuracy, nll, ece, per_class, confusion)",
      cxxopts::value<std::string>())(
      "out",
      "write confusion_matrix.png (row-normalised) and top_losses.png (the most confidently "
      "wrong images) into DIR",
      cxxopts::value<std::string>());
  cli::add_preprocess_options(options);
  cli::add_tta_option(options);
  cli::add_precision_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  auto args = cli::spread_values(argc, argv, {"model", "ensemble"});
  if (!cli::parse(options, args.argc(), args.argv.data(),
                  "tlkit evaluate --model runs/photos/model.pt --data my_photos/ --split test "
                  "--top 5 --json metrics.json",
                  result))
    return cli::kOk;
  const auto common = cli::apply_common(result);
  const auto [models, runs] = cli::models_or_runs(result);
  cli::require(result, {"data"});
  const auto top_k = result["top"].as<std::int64_t>();
  if (top_k < 1) throw cli::UsageError("--top must be at least 1");
  const auto tta = cli::tta_option(result);
  // One run: its snapshots swapped into one network in turn. Several models or runs: one
  // ensemble module over all their members.
  const bool snapshot_ensemble = runs.size() == 1;
  std::vector<fs::path> members;  // checked first: a folder without snapshots needs no model load
  if (snapshot_ensemble) members = pipeline::snapshot_files(runs.front());
  const auto device = c10::Device(common.device);
  const auto preprocess = cli::preprocess_options(result);
  fs::path model_path;
  std::string what;
  std::optional<model::Classifier> loaded;
  if (models.size() == 1 || snapshot_ensemble) {
    model_path =
        models.size() == 1 ? fs::path(models.front()) : fs::path(runs.front()) / "model.pt";
    what = model_path.string();
    loaded.emplace(pipeline::load_model(model_path, preprocess, device));
  } else {
    auto ensemble_members =
        models.empty() ? pipeline::run_members({runs.begin(), runs.end()}, preprocess, device)
                       : pipeline::load_members({models.begin(), models.end()}, preprocess, device);
    what = "ensemble of " + std::to_string(ensemble_members.size()) + " models (" +
           join(models.empty() ? runs : models) + ")";
    loaded.emplace(pipeline::make_ensemble(std::move(ensemble_members)));
  }
  auto& model = *loaded;
  data::SourceOptions source_options;
  source_options.limit = result["limit"].as<size_t>();
  source_options.seed = common.seed;
  std::string split_name;
  auto dataset =
      pipeline::select_split(data::open_source(result["data"].as<std::string>(), source_options),
                             result["split"].as<std::string>(), &split_name);
  TLKIT_CHECK(static_cast<std::int64_t>(dataset->classes().size()) == model.num_classes(),
              "the model has ", model.num_classes(), " classes but the data has ",
              dataset->classes().size());
  TLKIT_CHECK(model.class_names() == dataset->classes(), "the model was trained on the classes [",
              join(model.class_names()), "] but the data has [", join(dataset->classes()),
              "]; evaluate on data with the same class folders");
  pipeline::DataOptions loading;
  loading.batch_size = static_cast<std::int64_t>(result["batch-size"].as<size_t>());
  loading.workers = result["workers"].as<size_t>();
  const auto source =
      pipeline::make_loader(dataset, pipeline::tta_transform(model, tta), loading, false);
  const auto precision = cli::precision_options(result, common.device);
  train::ScriptNetwork script(model.module());
  if (precision.channels_last) train::set_channels_last(script, true);
  train::PrecisionNetwork network(script, train::parse_precision(precision.precision),
                                  precision.channels_last, device);
  train::TtaNetwork tta_network(network);  // [B, V, C, H, W] views in, mean softmax out
  train::Network& evaluated = tta == data::TtaMode::kNone
                                  ? static_cast<train::Network&>(network)
                                  : static_cast<train::Network&>(tta_network);
  if (top_k > model.num_classes())
    logger()->info("--top {} is more than the {} classes: top-{} is reported", top_k,
                   model.num_classes(), model.num_classes());
  train::Evaluation evaluation;
  train::ExampleOutcomes outcomes;  // each image's outcome, for the top losses (--out)
  const bool pictures = result.count("out") > 0;
  if (snapshot_ensemble) {
    std::vector<train::NamedTensors> states;
    for (const auto& file : members) {
      states.push_back(train::load_state(file));
      const auto broken = model::first_nonfinite(states.back());
      TLKIT_CHECK(broken.empty(), "snapshot '", file.string(), "' has NaN/Inf in its weights (",
                  broken, "): the ensemble cannot be evaluated");
    }
    evaluation = pictures ? train::evaluate_ensemble(evaluated, states, *source,
                                                     model.num_classes(), device, top_k, outcomes)
                          : train::evaluate_ensemble(evaluated, states, *source,
                                                     model.num_classes(), device, top_k);
    what = "ensemble of " + std::to_string(states.size()) + " snapshots in " + runs.front();
  } else {
    evaluation =
        pictures ? train::evaluate(evaluated, *source, model.num_classes(), device, top_k, outcomes)
                 : train::evaluate(evaluated, *source, model.num_classes(), device, top_k);
  }
  TLKIT_CHECK(std::isfinite(evaluation.loss), what, " gives non-finite outputs (loss ",
              evaluation.loss, ") on ", dataset->describe(),
              ": its accuracy means nothing; check the model and the images");
  const auto& classes = dataset->classes();
  if (tta != data::TtaMode::kNone)
    what += " with test-time augmentation " + data::tta_name(tta) + " (" +
            std::to_string(data::tta_views(tta)) + " views per image)";
  std::printf("%s on %s (%s split, %lld images)\naccuracy %.2f%%  loss %.4f\n%s\n\nper class:\n%s",
              what.c_str(), dataset->describe().c_str(), split_name.c_str(),
              static_cast<long long>(evaluation.examples), 100 * evaluation.accuracy,
              evaluation.loss, train::format_summary(evaluation).c_str(),
              train::format_per_class(evaluation, classes).c_str());
  std::cout << "\nconfusion matrix (rows: true class, columns: predicted):\n"
            << train::format_confusion(evaluation, classes);
  pipeline::Interpretation interpretation;
  if (pictures)
    interpretation = pipeline::write_interpretation(result["out"].as<std::string>(), evaluation,
                                                    classes, &outcomes, dataset.get());
  else
    interpretation.confused = train::most_confused(evaluation.confusion);
  std::cout << "\n" << pipeline::format_interpretation(interpretation, evaluation, classes);
  if (result.count("json")) {
    auto json = train::evaluation_json(evaluation, classes);
    json["model"] = what;
    json["data"] = dataset->describe();
    json["split"] = split_name;
    json["tta"] = data::tta_name(tta);
    write_file_atomic(result["json"].as<std::string>(), json.dump(2) + "\n");
  }
  cli::check_stdout("the evaluation");
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("evaluate",
                       "accuracy, top-k, per-class precision/recall/F1, calibration, confusion "
                       "matrix (model or ensemble)",
                       run_evaluate);

}  // namespace
