#include "command.h"

#include <iostream>

#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/threads.h>

namespace tlkit::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

Registrar::Registrar(std::string name, std::string summary, std::function<int(int, char**)> run) {
  registry().push_back({std::move(name), std::move(summary), std::move(run)});
}

void add_common_options(cxxopts::Options& options) {
  options.add_options("Common")("h,help", "Show this help")(
      "device", "cpu or cuda", cxxopts::value<std::string>()->default_value("cpu"))(
      "threads", "CPU threads for LibTorch (0 = all cores)",
      cxxopts::value<int>()->default_value("0"))(
      "seed", "Random seed", cxxopts::value<std::uint64_t>()->default_value("0"))(
      "v,verbose", "More log output (debug)")("q,quiet", "Only warnings and errors");
}

void require(const cxxopts::ParseResult& result, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (!result.count(name)) throw UsageError(std::string("--") + name + " is required");
}

bool parse(cxxopts::Options& options, int argc, char** argv, const std::string& example,
           cxxopts::ParseResult& result) {
  result = options.parse(argc, argv);
  if (result.count("help")) {
    std::cout << options.help() << "\nExample:\n  " << example << "\n";
    return false;
  }
  return true;
}

Common apply_common(const cxxopts::ParseResult& result) {
  Common common;
  if (result.count("verbose")) logger()->set_level(spdlog::level::debug);
  if (result.count("quiet")) logger()->set_level(spdlog::level::warn);
  common.device = result["device"].as<std::string>();
  TLKIT_CHECK(common.device == "cpu" || common.device.rfind("cuda", 0) == 0, "unknown --device '",
              common.device, "'; use cpu or cuda");
  if (common.device.rfind("cuda", 0) == 0) {
    TLKIT_CHECK(torch::cuda::is_available(), "--device ", common.device,
                " was asked for but no CUDA device is available; use --device cpu");
  }
  common.threads = set_threads(result["threads"].as<int>());
  const auto blas = blas_library();
  if (is_reference_blas(blas)) {
    logger()->warn(
        "LibTorch calls the reference BLAS ({}): fully connected layers run about 30x slower than "
        "with an optimised one; install one, e.g. apt-get install libopenblas0-pthread",
        blas);
  }
  common.seed = result["seed"].as<std::uint64_t>();
  torch::manual_seed(common.seed);
  return common;
}

}  // namespace tlkit::cli
