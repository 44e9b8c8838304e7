// tlkit import: a torchvision classifier's weights (a torch.save(model.state_dict()) .pth file,
// zip or legacy, or .safetensors) -> a tlkit model file (TorchScript with metadata), no Python.

#include <iostream>

#include <tlkit/core/error.h>
#include <tlkit/model/export.h>
#include <tlkit/model/import.h>

#include "command.h"

namespace {

using namespace tlkit;

const char* const kExample =
    "tlkit import --arch resnet18 --weights ~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth "
    "--out models/resnet18.pt";

std::string architecture_list() {
  std::string names;
  for (const auto& name : model::importable_architectures())
    names += (names.empty() ? "" : " ") + name;
  return names;
}

int run(int argc, char** argv) {
  cxxopts::Options options(
      "tlkit import",
      "Builds a torchvision classifier in C++ and loads its weights from a state_dict file "
      "(torch.save(model.state_dict()), e.g. torchvision's hub checkpoints) or a .safetensors "
      "file; writes a model file the other commands (and Python's torch.jit.load) take");
  options.add_options()("arch", "Architecture: " + architecture_list(),
                        cxxopts::value<std::string>())(
      "weights", "The weight file (.pth / .pt state_dict, or .safetensors)",
      cxxopts::value<std::string>())("out", "The model file to write (e.g. models/resnet18.pt)",
                                     cxxopts::value<std::string>());
  cli::add_common_options(options);
  cxxopts::ParseResult args;
  if (!cli::parse(options, argc, argv, kExample, args)) return cli::kOk;
  cli::apply_common(args);
  cli::require(args, {"arch", "weights", "out"});
  auto model = model::import_torchvision(args["arch"].as<std::string>(),
                                         args["weights"].as<std::string>());
  model::export_model(model, args["out"].as<std::string>());
  std::cout << "imported " << model.metadata().architecture << ": " << model.parameter_count()
            << " parameters, " << model.num_classes() << " classes, head " << model.find_head()
            << ", weights " << model.metadata().weights << "\n";
  cli::check_stdout("the summary");
  return cli::kOk;
}

}  // namespace

TLKIT_REGISTER_COMMAND("import",
                       "torchvision weights (.pth state_dict or .safetensors) -> a tlkit model",
                       run);
