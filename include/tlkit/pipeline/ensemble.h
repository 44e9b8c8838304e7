#pragma once
// Ensembles of classifiers, within a run (its snapshots) or across runs and model files: the
// prediction is the mean of the members' softmax outputs,
//   p(x) = 1/K · Σ_k softmax(f_k(x)).
// make_ensemble builds ONE TorchScript module that computes it, returned as log p(x) (so
// softmax of the output is p(x) exactly, and tlkit's losses and metrics apply to it unchanged),
// with the members as submodules member_0 ... member_{K-1} and the members' class names and
// preprocessing as its tlkit_* attributes. Python runs the saved file as it is:
//   m = torch.jit.load("ens.pt"); p = m(images).exp()
// Members must agree on class names, input channels and preprocessing (resize, crop, mean, std);
// the first difference is refused, naming the two members and the values.

#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/config.h>

namespace tlkit::pipeline {

struct EnsembleMember {
  std::string label;  // where it came from: "a.pt", "RUN/snapshots/snapshot_003.pt"
  model::Classifier model;
};

// The snapshot files of a run (RUN/snapshots/*.pt, sorted); throws when there are none.
std::vector<std::filesystem::path> snapshot_files(const std::filesystem::path& run);

// Each file loaded as a member (preprocessing flags applied as load_model does).
std::vector<EnsembleMember> load_members(const std::vector<std::filesystem::path>& files,
                                         const PreprocessOptions& preprocess,
                                         c10::Device device = c10::kCPU);

// The members of runs: a run with snapshots/ gives its model.pt once per snapshot, with that
// snapshot's weights; a run without gives its model.pt.
std::vector<EnsembleMember> run_members(const std::vector<std::filesystem::path>& runs,
                                        const PreprocessOptions& preprocess,
                                        c10::Device device = c10::kCPU);

// Throws tlkit::Error naming the first member that differs from the first one, and how.
void check_members_agree(const std::vector<EnsembleMember>& members);

// The ensemble as one classifier (checks the members first); the members are moved into it.
model::Classifier make_ensemble(std::vector<EnsembleMember> members);

// Saves an ensemble made by make_ensemble as one TorchScript file, atomically, in eval mode.
void save_ensemble(model::Classifier& ensemble, const std::filesystem::path& path);

}  // namespace tlkit::pipeline
