#pragma once
// Selection: which weights a run exports, decided on the validation split by the run's one
// monitored metric (val_loss: lowest loss; val_acc: highest accuracy, ties to the lower loss).
// Candidates are single models (finetune: the stage-1 head, fine-tuned last / best / EMA; train:
// last / best / EMA). The test split is only ever reported on.

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

// The single-model candidates of a fitted stage.
std::vector<Candidate> stage_candidates(const StageOutcome& outcome);

// Evaluates each candidate on `val` and picks one by `monitor`; the network is left holding the
// chosen weights.
Selection select_on_validation(train::Network& network, const std::vector<Candidate>& candidates,
                               train::BatchSource& val, const std::string& monitor,
                               std::int64_t num_classes, const c10::Device& device);

}  // namespace tlkit::pipeline
