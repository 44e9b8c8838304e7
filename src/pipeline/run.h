#pragma once
// The steps `finetune` and `train` share (internal to the pipeline layer).

#include <string>
#include <vector>

#include <tlkit/core/run_folder.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/fit.h>
#include <tlkit/pipeline/select.h>
#include <tlkit/pipeline/transfer.h>
#include <tlkit/train/metrics.h>
#include <tlkit/train/network.h>
#include <tlkit/train/precision.h>

namespace tlkit::pipeline::detail {

// What a run starts from.
struct Started {
  RunConfig requested;  // as given (config.json); the stages run the resolved one
  PreparedData data;
  model::Classifier model;
  std::int64_t num_classes = 0;
  std::unique_ptr<RunFolder> folder;  // rank 0: the run folder, owned and locked for the run
};

// Validates the config, opens the data and loads the model, checks the layers the settings name
// (so bad inputs fail before any folder is touched), then opens and locks the run folder (refused
// when it holds files tlkit did not write), checks a resume against the run, sets an earlier run
// aside unless resuming (RunFolder::start_afresh; cached features stay), writes config.json (a
// resume writes it once it has trained) and seeds the global RNG.
Started start_run(const RunConfig& config);

// The config with its "auto" budgets resolved for the run's training set, logged.
RunConfig resolve_budgets(const RunConfig& config, const Started& run);

// The stage-2 / train setup in `config.out`, with the sanity-check data options: an overfit check
// trains without augmentation.
StageSetup main_stage(const RunConfig& config, const std::string& label,
                      const std::vector<std::string>& classes);
DataOptions loading_options(const RunConfig& config);

// A model's whole forward as one trainable stage at the run's precision and memory format: what
// `train`, finetune's stage 2 and its scratch baseline fit.
class StageNetwork {
 public:
  StageNetwork(const torch::jit::Module& module, const FitOptions& fit);
  train::Network& network() { return precision_; }
  // fit_stage with dropout on (off for the overfit check); afterwards the weights are plain
  // contiguous tensors again, whatever layout they trained in, ready to evaluate and export.
  StageOutcome fit(torch::optim::Optimizer& optimizer, const FitOptions& fit,
                   const Sources& sources, const StageSetup& setup);

 private:
  train::ScriptNetwork script_;
  train::PrecisionNetwork precision_;
  bool channels_last_;
};

// Earlier stages' candidates (finetune: the stage-1 head), one result row each.
struct Earlier {
  std::vector<Candidate> candidates;
  std::vector<ResultRow> rows;
};

// A choice made without the val split (cross-validation, or the settings when there is no val
// split): the candidate to export by name ("stage 1 head", "last", "EMA"), why, and the report's
// section on how it was made (Markdown, may be empty).
struct Decision {
  std::string candidate;
  std::string reason;
  std::string report;
  // --calibrate temperature on small data: the folds' held-out log-probabilities of the chosen
  // option [N, C] and their labels [N] (undefined when the folds did not run), and what they are.
  at::Tensor held_log_probabilities, held_labels;
  std::string held_out;
};

// Rows for the fitted stage (last / best / EMA / snapshot ensemble) on the evaluation split (none
// without one), the choice among the earlier and this stage's candidates (on validation, or
// `decided` when the run has no val split), the export of the chosen weights as model.pt, and the
// report.
RunResult finish_run(Started& run, train::Network& network, const StageOutcome& outcome,
                     Earlier earlier, const Sources& sources, const RunConfig& config,
                     const Decision& decided = {});

// finetune's stage 2 parameter groups: every layer from --unfreeze-from (default: all of them)
// with per-layer learning rates by depth decay below the head, or explicit rules.
std::vector<model::ParamGroupSpec> fine_tuning_groups(model::Classifier& model,
                                                      const std::string& head,
                                                      const RunConfig& config);

// summary.json (config, results, history), results.md, curves_*.png and report.html of a run.
void write_report(const RunConfig& requested, const RunConfig& resolved, const RunResult& result,
                  const std::vector<train::Metrics>& history);

}  // namespace tlkit::pipeline::detail
