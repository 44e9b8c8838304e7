#include "command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

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

ModelsOrRuns models_or_runs(const cxxopts::ParseResult& result) {
  ModelsOrRuns given;
  if (result.count("model")) given.models = result["model"].as<std::vector<std::string>>();
  if (result.count("ensemble")) given.runs = result["ensemble"].as<std::vector<std::string>>();
  if (given.models.empty() == given.runs.empty())
    throw UsageError(
        "give --model M.pt (several: their ensemble) or --ensemble RUN (several: across runs), "
        "not both");
  return given;
}

SpreadArgs spread_values(int argc, char** argv, std::initializer_list<const char*> names) {
  SpreadArgs out;
  const auto is_spread = [&](const std::string& arg) {
    for (const char* name : names)
      if (arg == std::string("--") + name) return true;
    return false;
  };
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!is_spread(arg)) {
      out.strings.push_back(arg);
      continue;
    }
    // A value may itself start with '-' only in the --name=VALUE form.
    int j = i + 1;
    for (; j < argc && argv[j][0] != '-'; ++j) out.strings.push_back(arg + "=" + argv[j]);
    if (j == i + 1) out.strings.push_back(arg);  // no value: cxxopts says so
    i = j - 1;
  }
  for (auto& s : out.strings) out.argv.push_back(s.data());
  return out;
}

namespace {

// cxxopts says "Argument '1.5' failed to parse" without the option: find the option whose value it
// was on the command line.
std::string name_the_option(const std::string& message, int argc, char** argv) {
  // cxxopts 3.1 quotes the value with U+2018 / U+2019, 3.2 with ASCII apostrophes.
  std::string value;
  const auto open = message.find("\xe2\x80\x98"), close = message.find("\xe2\x80\x99");
  if (open != std::string::npos && close != std::string::npos && close > open) {
    value = message.substr(open + 3, close - open - 3);
  } else {
    const auto first = message.find('\''), last = message.rfind('\'');
    if (first == std::string::npos || last <= first) return message;
    value = message.substr(first + 1, last - first - 1);
  }
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos && arg.substr(eq + 1) == value)
      return arg.substr(0, eq) + ": '" + value + "' is not a valid value (see --help for its type)";
    if (arg == value && i > 1 && argv[i - 1][0] == '-')
      return std::string(argv[i - 1]) + ": '" + value +
             "' is not a valid value (see --help for its type)";
  }
  return message;
}

}  // namespace

bool parse(cxxopts::Options& options, int argc, char** argv, const std::string& example,
           cxxopts::ParseResult& result) {
  try {
    result = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
    throw UsageError(name_the_option(e.what(), argc, argv));
  }
  if (!result.unmatched().empty()) {
    throw UsageError("unexpected argument '" + result.unmatched().front() +
                     "': every value follows the --option it belongs to");
  }
  if (result.count("help")) {
    std::cout << options.help() << "\nExample:\n  " << example << "\n";
    return false;
  }
  return true;
}

void check_stdout(const std::string& what) {
  errno = 0;
  std::cout.flush();
  const bool flushed = std::fflush(stdout) == 0;
  const int error = errno;
  TLKIT_CHECK(flushed && !std::ferror(stdout) && std::cout.good(), "cannot write ", what,
              " to standard output: ", error != 0 ? std::strerror(error) : "write error",
              " (a closed pipe or a full disk?)");
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
  const int threads = result["threads"].as<int>();
  const int most = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads < 0 || threads > most) {
    throw UsageError("--threads " + std::to_string(threads) +
                     " is out of range: use 0 (every core) or 1.." + std::to_string(most) +
                     " (at most 4x the " + std::to_string(most / 4) + " hardware threads)");
  }
  common.threads = set_threads(threads);
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
