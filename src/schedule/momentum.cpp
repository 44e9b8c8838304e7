#include <tlkit/schedule/momentum.h>

#include <mutex>
#include <memory>
#include <sstream>
#include <tuple>
#include <vector>

#include <c10/util/Exception.h>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <tlkit/core/error.h>

namespace tlkit::schedule {
namespace {

struct Registry {
  std::mutex mutex;
  std::vector<MomentumAccessor> accessors;  // searched newest first
};

// The generic path, for options classes nobody registered: LibTorch-style options serialize their
// fields by name ("momentum", or "betas" as a tuple), so the coefficient is read and written
// through serialize(). Slower than an accessor (an archive round trip), but it needs no code in
// the optimizer: tlkit's own optimizers and any torch-style third-party one work unchanged.
torch::serialize::InputArchive reopen(torch::serialize::OutputArchive& out) {
  std::stringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  return in;
}

// (A pointer, not std::optional: InputArchive's copy constructor takes a non-const reference,
// which Clang's std::optional rejects.)
std::unique_ptr<torch::serialize::InputArchive> serialized(
    const torch::optim::OptimizerOptions& options) {
  try {
    torch::serialize::OutputArchive out;
    options.serialize(out);  // the base class throws: not serializable
    return std::make_unique<torch::serialize::InputArchive>(reopen(out));
  } catch (const c10::Error&) {
    return nullptr;
  }
}

// The value of `key` as the coefficient: a number ("momentum") or the first of a tuple ("betas").
std::optional<double> coefficient(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue value;
  if (!archive.try_read(key, value)) return std::nullopt;
  if (key == "momentum" && value.isDouble()) return value.toDouble();
  if (key == "betas" && value.isTuple() && value.toTupleRef().elements().size() == 2) {
    return value.toTupleRef().elements()[0].toDouble();
  }
  return std::nullopt;
}

std::optional<double> serialized_get(const torch::optim::OptimizerOptions& options) {
  auto archive = serialized(options);
  if (!archive) return std::nullopt;
  if (auto momentum = coefficient(*archive, "momentum")) return momentum;
  return coefficient(*archive, "betas");
}

bool serialized_set(torch::optim::OptimizerOptions& options, double value) {
  auto archive = serialized(options);
  if (!archive) return false;
  const bool has_momentum = coefficient(*archive, "momentum").has_value();
  if (!has_momentum && !coefficient(*archive, "betas")) return false;
  torch::serialize::OutputArchive changed;
  for (const auto& key : archive->keys()) {
    c10::IValue field;
    archive->read(key, field);
    if (has_momentum && key == "momentum") field = c10::IValue(value);
    if (!has_momentum && key == "betas") {
      field = c10::IValue(std::make_tuple(value, field.toTupleRef().elements()[1].toDouble()));
    }
    changed.write(key, field);
  }
  auto in = reopen(changed);
  options.serialize(in);
  return true;
}

// LibTorch's own options first, so that later registrations take precedence.
Registry& registry() {
  static Registry* instance = [] {
    auto* created = new Registry;  // never destroyed: usable from static destructors
    created->accessors = {
        momentum_option_accessor<torch::optim::SGDOptions>("torch::optim::SGDOptions"),
        momentum_option_accessor<torch::optim::RMSpropOptions>("torch::optim::RMSpropOptions"),
        beta1_option_accessor<torch::optim::AdamOptions>("torch::optim::AdamOptions"),
        beta1_option_accessor<torch::optim::AdamWOptions>("torch::optim::AdamWOptions")};
    // Tried last: any options class that serializes "momentum" or "betas" the LibTorch way.
    created->accessors.insert(
        created->accessors.begin(),
        MomentumAccessor{"options serialized with momentum/betas", serialized_get, serialized_set});
    return created;
  }();
  return *instance;
}

std::vector<MomentumAccessor> snapshot() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  return reg.accessors;
}

}  // namespace

void register_momentum_accessor(MomentumAccessor accessor) {
  TLKIT_CHECK(accessor.get && accessor.set, "register_momentum_accessor: '", accessor.name,
              "' needs both a get and a set function");
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  reg.accessors.push_back(std::move(accessor));
}

std::optional<double> get_momentum(const torch::optim::OptimizerOptions& options) {
  const auto accessors = snapshot();
  for (auto it = accessors.rbegin(); it != accessors.rend(); ++it) {
    if (auto value = it->get(options)) return value;
  }
  return std::nullopt;
}

void set_momentum(torch::optim::OptimizerOptions& options, double value) {
  const auto accessors = snapshot();
  for (auto it = accessors.rbegin(); it != accessors.rend(); ++it) {
    if (it->set(options, value)) return;
  }
  fail("this optimizer's options have no momentum or betas that tlkit knows (known: ",
       momentum_accessor_names(),
       "); register its options class with tlkit::schedule::register_momentum_option<T>() or "
       "register_beta1_option<T>(), or turn cycle_momentum off");
}

std::string momentum_accessor_names() {
  std::string names;
  for (const auto& accessor : snapshot()) names += (names.empty() ? "" : ", ") + accessor.name;
  return names;
}

}  // namespace tlkit::schedule
