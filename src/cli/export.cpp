// tlkit export: writes a model as a TorchScript file (Python's torch.jit.load runs it) or as ONNX
// (OpenCV DNN, ONNX Runtime), with its class names and preprocessing; or an ensemble of models or
// runs as one TorchScript file that returns the log of the members' mean softmax.
#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/core/error.h>
#include <tlkit/model/export.h>
#include <tlkit/model/onnx_export.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/ensemble.h>

#include "command.h"
#include "run_options.h"

namespace fs = std::filesystem;

namespace {

using namespace tlkit;

// --format, or the one the --out extension names (.onnx: onnx, anything else: torchscript).
std::string resolve_format(const cxxopts::ParseResult& result, const fs::path& out) {
  if (!result.count("format")) return out.extension() == ".onnx" ? "onnx" : "torchscript";
  const auto format = result["format"].as<std::string>();
  if (format != "onnx" && format != "torchscript")
    throw cli::UsageError("unknown --format '" + format + "'; use onnx or torchscript");
  return format;
}

int run_export(int argc, char** argv) {
  cxxopts::Options options("tlkit export",
                           "Write a model as one TorchScript file or as ONNX (opset 13), with "
                           "its class names and preprocessing");
  options.add_options()("model",
                        "a TorchScript classifier (e.g. RUN/model.pt); several: their ensemble",
                        cxxopts::value<std::vector<std::string>>())(
      "ensemble",
      "run folders: the ensemble of their snapshots/ (or model.pt where a run has none)",
      cxxopts::value<std::vector<std::string>>())(
      "format", "onnx or torchscript (default: onnx when --out ends in .onnx)",
      cxxopts::value<std::string>())("out", "the file to write", cxxopts::value<std::string>());
  cli::add_preprocess_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  auto args = cli::spread_values(argc, argv, {"model", "ensemble"});
  if (!cli::parse(options, args.argc(), args.argv.data(),
                  "tlkit export --model runs/photos/model.pt --format onnx --out photos.onnx\n"
                  "  tlkit export --ensemble runs/seed1 runs/seed2 runs/seed3 --out ensemble.pt",
                  result))
    return cli::kOk;
  cli::apply_common(result);
  cli::require(result, {"out"});
  const auto [models, runs] = cli::models_or_runs(result);
  const fs::path out = result["out"].as<std::string>();
  const auto format = resolve_format(result, out);
  const auto preprocess = cli::preprocess_options(result);
  if (models.size() == 1) {
    auto model = pipeline::load_model(models.front(), preprocess, c10::kCPU);
    if (format == "onnx") {
      model::export_onnx(model, out);
    } else {
      model::export_model(model, out);
    }
    return cli::kOk;
  }
  if (format == "onnx")
    throw cli::UsageError(
        "an ensemble is exported as TorchScript only (--format torchscript); "
        "export its members to ONNX one by one");
  auto ensemble = pipeline::make_ensemble(
      models.empty() ? pipeline::run_members({runs.begin(), runs.end()}, preprocess)
                     : pipeline::load_members({models.begin(), models.end()}, preprocess));
  pipeline::save_ensemble(ensemble, out);
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("export",
                       "write a model as TorchScript or ONNX (class names and "
                       "preprocessing included)",
                       run_export);

}  // namespace
