#pragma once
// Selection: which weights a run exports, decided on the validation split by the run's one
// monitored metric (val_loss: lowest loss; val_acc: highest accuracy, ties to the lower loss).
// Candidates are single models (finetune: the stage-1 head; then last / best / EMA / the snapshots'
// weight average). The test split is only ever reported on.

#include <cstdint>
#include <string>
#include <vector>

#include <tlkit/pipeline/config.h>
#include <tlkit/pipeline/fit.h>
#include <tlkit/train/batch_source.h>
#include <tlkit/train/metrics.h>
#include <tlkit/train/network.h>

namespace tlkit::pipeline {

struct Candidate {
  std::string name;  // "stage 1 head", "last", "best (epoch 7)", "EMA"
  train::NamedTensors weights;
};

struct Selection {
  size_t chosen = 0;
  std::vector<train::Evaluation> validation;  // one per candidate
  std::string reason;  // e.g. "lowest val_loss on validation (0.4123) of 4 candidates"
};

// The weights of several snapshots averaged, tensor by tensor (integer buffers: the last one's).
// The snapshot ensemble as one model: one forward pass instead of one per member, exportable as a
// single TorchScript file (its accuracy is reported beside the ensemble's, which averages
// predictions).
train::NamedTensors average_weights(const std::vector<train::NamedTensors>& members);

// The single-model candidates of a fitted stage: last, best, EMA, and with two or more snapshots
// their weight average. Given the training images, the average's batch-norm statistics are
// recomputed over them (SWA's update_bn: averaged running statistics do not belong to averaged
// weights); the network is left holding the last candidate it was given.
std::vector<Candidate> stage_candidates(const StageOutcome& outcome);
std::vector<Candidate> stage_candidates(const StageOutcome& outcome, train::Network& network,
                                        train::BatchSource& train, const c10::Device& device);

// Evaluates each candidate on `val` and picks one by `monitor`; the network is left holding the
// chosen weights.
Selection select_on_validation(train::Network& network, const std::vector<Candidate>& candidates,
                               train::BatchSource& val, const std::string& monitor,
                               std::int64_t num_classes, const c10::Device& device);

// Options scored on the held-out folds of k-fold cross-validation: one loss and one accuracy per
// fold.
struct FoldScores {
  std::string name;
  std::vector<double> loss, accuracy;
};

// The mean and the sample standard deviation of per-fold values (NaN / 0 when too few).
double fold_mean(const std::vector<double>& values);
double fold_std(const std::vector<double>& values);

// The choice among `options`, given in order of preference (e.g. the full training length before
// shorter ones): the option with the best mean by `monitor` (train::better), then the most
// preferred option whose mean is not worse than that best mean by more than its standard error
// over the folds (the one-standard-error rule of Breiman et al., "Classification and Regression
// Trees", 1984): a difference within the folds' noise does not move the choice off the preferred
// option. `why` (optional) receives one line on the choice.
size_t choose_within_one_se(const std::vector<FoldScores>& options, const std::string& monitor,
                            std::string* why = nullptr);

}  // namespace tlkit::pipeline
