#pragma once
// The steps `finetune` and `train` share (internal to the pipeline layer).

#include <string>
#include <vector>

#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/fit.h>
#include <tlkit/pipeline/select.h>
#include <tlkit/pipeline/transfer.h>
#include <tlkit/train/metrics.h>

namespace tlkit::pipeline::detail {

// Validates the config, creates the run folder, removes what an earlier run into the same folder
// left behind (checkpoints, snapshots, model, curves, events) unless resuming, writes config.json
// and seeds the global RNG. Inputs are checked before the folder is created.
void start_run(const RunConfig& config);

// The stage-2 / train setup in `config.out`, with the sanity-check data options: an overfit check
// trains without augmentation.
StageSetup main_stage(const RunConfig& config, const std::string& label, std::int64_t num_classes);
DataOptions loading_options(const RunConfig& config);

// Rows for the fitted stage (last / best / EMA / snapshot ensemble) on the evaluation split, the
// choice among `candidates` (earlier stages' first, one row each in `rows`, then the stage's own)
// on validation, the export of the chosen weights as model.pt and the report.
RunResult finish_run(model::Classifier& model, train::Network& network, const StageOutcome& outcome,
                     std::vector<Candidate> candidates, std::vector<ResultRow> rows,
                     const PreparedData& data, const Sources& sources, const RunConfig& config,
                     const std::string& row_prefix);

// summary.json (config, results, history), results.md and curves_*.png of a run.
void write_report(const RunConfig& config, const RunResult& result,
                  const std::vector<train::Metrics>& history);

}  // namespace tlkit::pipeline::detail
