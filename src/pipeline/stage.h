#pragma once
// Pieces shared by `finetune` and `train` (internal to the pipeline layer).

#include <memory>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include <tlkit/data/dataset.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/preprocess.h>
#include <tlkit/pipeline/transfer.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/trainer.h>


namespace tlkit::pipeline::detail {

struct PreparedData {
  data::Splits splits;
  std::shared_ptr<const data::Dataset> train, val, eval;  // eval: test split, else val
  std::string eval_split;                                // "test" or "val"
  std::vector<std::string> classes;
};

PreparedData open_data(const DataOptions& options);

using pipeline::eval_transform_for;
using pipeline::model_normalization;
std::shared_ptr<data::Transform> train_transform_for(const model::Classifier& model, const DataOptions& options);

std::shared_ptr<train::BatchSource> make_source(std::shared_ptr<const data::Dataset> dataset,
                                                std::shared_ptr<data::Transform> transform,
                                                const DataOptions& options, bool shuffle);

// Loaders for training (shuffled, augmented), validation and the evaluation split.
struct Sources {
  std::shared_ptr<train::BatchSource> train, val, eval;
};
Sources make_sources(const PreparedData& data, const model::Classifier& model, const DataOptions& options);

// What a stage leaves behind besides the trained network.
struct StageOutcome {
  train::FitResult fit;
  train::NamedTensors last, best;
  std::int64_t best_epoch = -1;
  train::NamedTensors ema;  // empty without EMA
  std::vector<train::NamedTensors> snapshots;
  std::vector<std::int64_t> snapshot_epochs;
};

struct StageSetup {
  std::filesystem::path dir;   // checkpoints/, snapshots/, metrics.csv, events go here
  std::string label;           // progress-bar label, e.g. "fine-tune"
  std::int64_t num_classes = 0;
  bool checkpoints = true;
  bool resume = false;
  bool initial_loss_check = true;
};

// Runs the trainer with the standard callbacks (guards, EMA, snapshots, best tracking, CSV,
// TensorBoard, checkpoints) and returns last / best / EMA / snapshot weights. The network holds
// the last weights afterwards.
StageOutcome run_stage(train::Network& network, torch::optim::Optimizer& optimizer, const std::string& schedule,
                       const FitOptions& fit, train::BatchSource& train_source, train::BatchSource* val_source,
                       const StageSetup& setup);

// Builds the optimizer from a spec over the given groups.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& spec,
                                                        std::vector<torch::optim::OptimizerParamGroup> groups);
double spec_lr(const std::string& optimizer_spec, double fallback);

// Evaluates last / best / EMA / ensemble on `source`; `prefix` names the rows.
std::vector<ResultRow> evaluate_outcome(train::Network& network, const StageOutcome& outcome,
                                        train::BatchSource& source, std::int64_t num_classes,
                                        const std::string& prefix, const c10::Device& device);

// Chooses the single-model weights (last / best / EMA) with the best accuracy on `val`, loads them
// into the network, exports the model and returns the choice.
std::string export_best(model::Classifier& model, train::Network& network, const StageOutcome& outcome,
                        train::BatchSource* val, std::int64_t num_classes, const std::filesystem::path& path,
                        const c10::Device& device);

// summary.json, results.md and curves.png of a run.
void write_report(const std::filesystem::path& out, const RunResult& result, const std::vector<train::Metrics>& history,
                  const std::string& command, const std::vector<std::pair<std::string, std::string>>& settings);

}  // namespace tlkit::pipeline::detail
