#pragma once
// The options of the commands that train (`tlkit train`, `tlkit finetune`) and the preprocessing
// options of every command that reads images. A run's RunConfig is built here once: the command's
// defaults, then --config FILE, then every flag given on the command line.

#include <cxxopts.hpp>

#include <tlkit/pipeline/config.h>
#include <tlkit/pipeline/transfer.h>

#include "command.h"

namespace tlkit::cli {

// --input-size --resize --mean --std (override the model's metadata).
void add_preprocess_options(cxxopts::Options& options);
pipeline::PreprocessOptions preprocess_options(const cxxopts::ParseResult& result);

// --precision fp32|tf32|bf16|fp16 and --channels-last (train, finetune, extract, evaluate).
void add_precision_options(cxxopts::Options& options);
struct PrecisionChoice {
  std::string precision = "fp32";
  bool channels_last = false;
};
// Checked against the device: tf32 and fp16 need CUDA.
PrecisionChoice precision_options(const cxxopts::ParseResult& result, const std::string& device);

// Data, fitting (and for finetune the stage-1 and stage-2 options), --config, --out, --resume;
// the help shows the command's defaults.
void add_run_options(cxxopts::Options& options, const std::string& command);
// The resolved, validated config of a run.
pipeline::RunConfig run_config(const cxxopts::ParseResult& result, const std::string& command,
                               const Common& common);

// Prints the results table to stdout and where the run's files are.
void print_run(const pipeline::RunResult& result, const std::filesystem::path& out);

}  // namespace tlkit::cli
