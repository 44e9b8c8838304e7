#include <tlkit/pipeline/ensemble.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include <torch/script.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>
#include <tlkit/model/export.h>
#include <tlkit/model/script_checks.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/network.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

std::vector<fs::path> pt_files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".pt") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

template <typename T>
std::string list_text(const std::vector<T>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}

// The members' shared metadata as the ensemble module's tlkit_* attributes.
void add_metadata(torch::jit::Module& ensemble, const std::vector<EnsembleMember>& members) {
  const auto& md = members.front().model.metadata();
  std::vector<std::string> labels;
  for (const auto& m : members) labels.push_back(m.label);
  const auto integer = c10::IntType::get();
  const auto str = c10::StringType::get();
  ensemble.register_attribute("tlkit_format", integer, std::int64_t{1});
  ensemble.register_attribute(
      "tlkit_architecture", str,
      "ensemble of " + std::to_string(members.size()) + " x " + md.architecture);
  ensemble.register_attribute("tlkit_input_size", integer, md.crop);
  ensemble.register_attribute("tlkit_resize", integer, md.resize);
  ensemble.register_attribute("tlkit_crop", integer, md.crop);
  ensemble.register_attribute("tlkit_mean", c10::ListType::ofFloats(), c10::List<double>(md.mean));
  ensemble.register_attribute("tlkit_std", c10::ListType::ofFloats(), c10::List<double>(md.std));
  ensemble.register_attribute("tlkit_weights", str, "ensemble of " + join(labels));
  ensemble.register_attribute("tlkit_class_names", c10::ListType::ofStrings(),
                              c10::List<std::string>(members.front().model.class_names()));
  ensemble.register_attribute("tlkit_members", c10::ListType::ofStrings(),
                              c10::List<std::string>(labels));
}

}  // namespace

std::vector<fs::path> snapshot_files(const fs::path& run) {
  const auto dir = run / "snapshots";
  TLKIT_CHECK(fs::is_directory(dir), "'", run.string(),
              "' has no snapshots/ folder; run finetune/train with a "
              "warm-restart schedule (e.g. --schedule restarts:T_0=5) to get an ensemble");
  auto files = pt_files_in(dir);
  TLKIT_CHECK(!files.empty(), "'", dir.string(), "' holds no snapshot_*.pt files");
  return files;
}

std::vector<EnsembleMember> load_members(const std::vector<fs::path>& files,
                                         const PreprocessOptions& preprocess, c10::Device device) {
  std::vector<EnsembleMember> members;
  for (const auto& file : files)
    members.push_back({file.string(), load_model(file, preprocess, device)});
  return members;
}

std::vector<EnsembleMember> run_members(const std::vector<fs::path>& runs,
                                        const PreprocessOptions& preprocess, c10::Device device) {
  std::vector<EnsembleMember> members;
  for (const auto& run : runs) {
    const auto model_file = run / "model.pt";
    TLKIT_CHECK(fs::is_regular_file(model_file), "'", run.string(),
                "' has no model.pt: give run folders written by tlkit finetune or train");
    auto base = load_model(model_file, preprocess, device);
    const auto snapshots = pt_files_in(run / "snapshots");
    if (snapshots.empty()) {
      members.push_back({model_file.string(), std::move(base)});
      continue;
    }
    for (const auto& file : snapshots) {
      auto member = base.clone();
      const auto state = train::load_state(file);
      const auto broken = model::first_nonfinite(state);
      TLKIT_CHECK(broken.empty(), "snapshot '", file.string(), "' has NaN/Inf in its weights (",
                  broken, "): the ensemble cannot use it");
      train::ScriptNetwork network(member.module());
      train::copy_state(network, state);
      members.push_back({file.string(), std::move(member)});
    }
  }
  return members;
}

void check_members_agree(const std::vector<EnsembleMember>& members) {
  TLKIT_CHECK(!members.empty(), "an ensemble needs at least one member");
  const auto& first = members.front();
  const auto& a = first.model.metadata();
  for (size_t i = 1; i < members.size(); ++i) {
    const auto& other = members[i];
    const auto& b = other.model.metadata();
    const auto differ = [&](const std::string& what, const std::string& x, const std::string& y) {
      fail("ensemble members disagree on ", what, ": '", first.label, "' has ", x, " but '",
           other.label, "' has ", y,
           "; an ensemble averages models of the same classes fed the same images");
    };
    if (first.model.class_names() != other.model.class_names())
      differ("the class names", list_text(first.model.class_names()),
             list_text(other.model.class_names()));
    if (first.model.input_channels() != other.model.input_channels())
      differ("the input channels", std::to_string(first.model.input_channels()),
             std::to_string(other.model.input_channels()));
    if (a.crop != b.crop)
      differ("the input size (crop)", std::to_string(a.crop), std::to_string(b.crop));
    if (a.resize != b.resize)
      differ("the resize", std::to_string(a.resize), std::to_string(b.resize));
    if (a.mean != b.mean) differ("the mean", list_text(a.mean), list_text(b.mean));
    if (a.std != b.std) differ("the std", list_text(a.std), list_text(b.std));
  }
}

model::Classifier make_ensemble(std::vector<EnsembleMember> members) {
  check_members_agree(members);
  torch::jit::Module ensemble(c10::QualifiedName("__torch__.tlkit.Ensemble"));
  // What torch.nn.Module has: train() / eval() and Python's m.training read it.
  ensemble.register_attribute("training", c10::BoolType::get(), false);
  // p(x) = mean_k softmax(f_k(x)), returned as log p(x) = logsumexp_k log_softmax(f_k(x)) - log K
  std::ostringstream forward;
  forward << "def forward(self, x: Tensor) -> Tensor:\n    members = [";
  for (size_t k = 0; k < members.size(); ++k) {
    const auto name = "member_" + std::to_string(k);
    members[k].model.train(false);
    ensemble.register_module(name, members[k].model.module());
    forward << (k ? ", " : "") << "torch.log_softmax(self." << name << ".forward(x), 1)";
  }
  forward.precision(17);
  forward << "]\n    return torch.logsumexp(torch.stack(members), 0) - "
          << std::log(static_cast<double>(members.size())) << "\n";
  ensemble.define(forward.str());
  add_metadata(ensemble, members);
  ensemble.eval();
  model::LoadOptions options;
  options.device = members.front().model.device();
  options.input_size = members.front().model.metadata().crop;
  return model::Classifier(ensemble, options);
}

void save_ensemble(model::Classifier& ensemble, const fs::path& path) {
  TLKIT_CHECK(ensemble.module().hasattr("tlkit_members"), "'", path.string(),
              "': save_ensemble takes an ensemble made by make_ensemble");
  const bool was_training = ensemble.is_training();
  ensemble.train(false);
  try {
    model::save_module(ensemble.module(), path);
  } catch (...) {
    ensemble.train(was_training);
    throw;
  }
  ensemble.train(was_training);
  const auto members = ensemble.module().attr("tlkit_members").toListRef().size();
  logger()->info("wrote an ensemble of {} members ({} classes, input {}x{}) to {}", members,
                 ensemble.num_classes(), ensemble.metadata().crop, ensemble.metadata().crop,
                 path.string());
}

}  // namespace tlkit::pipeline
