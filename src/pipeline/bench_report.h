#pragma once
// The result files of `tlkit bench` (internal to the pipeline layer).

#include <cstdint>
#include <string>

#include <tlkit/core/json.h>
#include <tlkit/pipeline/bench.h>

namespace tlkit::pipeline::detail {

struct BenchReportInput {
  const BenchConfig& config;  // with the problem's defaults filled in
  const Json& environment;
  std::int64_t num_classes;
  double target;        // validation-accuracy target (0 = none)
  std::string problem;  // the problem's name, or the model's file name
};

// results.csv, results.json, report.md and the PNG plots in config.out; fills summary.best and
// summary.report.
void write_bench_results(const BenchReportInput& input, BenchSummary& summary);

}  // namespace tlkit::pipeline::detail
