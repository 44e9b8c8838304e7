#pragma once
// Options shared by `tlkit train` and `tlkit finetune`: data, fitting, device.

#include <cxxopts.hpp>

#include <tlkit/pipeline/transfer.h>

#include "command.h"

namespace tlkit::cli {

void add_data_options(cxxopts::Options& options, std::int64_t default_batch);
void add_fit_options(cxxopts::Options& options, const std::string& group, const std::string& default_optimizer,
                     const std::string& default_schedule, std::int64_t default_epochs);

pipeline::DataOptions data_options(const cxxopts::ParseResult& result, const Common& common);
pipeline::FitOptions fit_options(const cxxopts::ParseResult& result, const Common& common);

// Prints the results table to stdout and where the run's files are.
void print_run(const pipeline::RunResult& result, const std::filesystem::path& out);

}  // namespace tlkit::cli
