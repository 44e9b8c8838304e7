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
// their weight average.
std::vector<Candidate> stage_candidates(const StageOutcome& outcome);

// Evaluates each candidate on `val` and picks one by `monitor`; the network is left holding the
// chosen weights.
Selection select_on_validation(train::Network& network, const std::vector<Candidate>& candidates,
                               train::BatchSource& val, const std::string& monitor,
                               std::int64_t num_classes, const c10::Device& device);

}  // namespace tlkit::pipeline
