#include <tlkit/train/ema.h>

#include <algorithm>
#include <cmath>
#include <string>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace tlkit::train {
namespace {

std::vector<at::Tensor> select(std::vector<at::Tensor> parameters, bool trainable_only) {
  if (!trainable_only) return parameters;
  parameters.erase(std::remove_if(parameters.begin(), parameters.end(),
                                  [](const at::Tensor& p) { return !p.requires_grad(); }),
                   parameters.end());
  return parameters;
}

std::vector<at::Tensor> module_parameters(const torch::nn::Module& module) {
  return module.parameters(true);
}
std::vector<at::Tensor> module_buffers(const torch::nn::Module& module) {
  return module.buffers(true);
}

std::vector<at::Tensor> module_parameters(const torch::jit::Module& module) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : module.parameters(true)) out.push_back(p);
  return out;
}

std::vector<at::Tensor> module_buffers(const torch::jit::Module& module) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& b : module.buffers(true)) out.push_back(b);
  return out;
}

std::string key(const char* prefix, std::size_t index) { return prefix + std::to_string(index); }

std::int64_t read_int(torch::serialize::InputArchive& archive, const std::string& name) {
  c10::IValue value;
  TLKIT_CHECK(archive.try_read(name, value) && value.isInt(), "EMA state has no integer '", name,
              "'; was it written by ExponentialMovingAverage::save()?");
  return value.toInt();
}

}  // namespace

ExponentialMovingAverage::ExponentialMovingAverage(std::vector<at::Tensor> parameters,
                                                   std::vector<at::Tensor> buffers,
                                                   EMAOptions options)
    : options_(options) {
  TLKIT_CHECK(std::isfinite(options_.decay()) && options_.decay() >= 0 && options_.decay() <= 1,
              "EMA decay must be in [0, 1] (e.g. 0.999), got ", options_.decay());
  parameters = select(std::move(parameters), options_.trainable_only());
  num_parameters_ = parameters.size();
  targets_ = std::move(parameters);
  targets_.insert(targets_.end(), buffers.begin(), buffers.end());
  torch::NoGradGuard no_grad;
  averages_.reserve(targets_.size());
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    TLKIT_CHECK(targets_[i].defined(), "EMA: tensor ", i,
                " is undefined; pass the model's parameters and buffers");
    averages_.push_back(targets_[i].detach().clone());
  }
}

ExponentialMovingAverage::ExponentialMovingAverage(const torch::nn::Module& module,
                                                   EMAOptions options)
    : ExponentialMovingAverage(module_parameters(module), module_buffers(module), options) {}

ExponentialMovingAverage::ExponentialMovingAverage(const torch::jit::Module& module,
                                                   EMAOptions options)
    : ExponentialMovingAverage(module_parameters(module), module_buffers(module), options) {}

ExponentialMovingAverage::~ExponentialMovingAverage() {
  if (!swapped_) return;
  try {
    swap_out();  // never leave the model holding the averages
  } catch (const std::exception& e) {
    logger()->error("EMA: restoring the raw weights failed: {}", e.what());
  }
}

bool ExponentialMovingAverage::averaged(std::size_t index) const {
  if (!at::isFloatingType(targets_[index].scalar_type())) return false;
  return index < num_parameters_ || options_.buffers() == EMABufferMode::kAverage;
}

double ExponentialMovingAverage::next_decay() const {
  if (!options_.warmup()) return options_.decay();
  const double t = static_cast<double>(num_updates_);
  return std::min(options_.decay(), (1.0 + t) / (10.0 + t));
}

void ExponentialMovingAverage::update() {
  TLKIT_CHECK(!swapped_,
              "EMA::update() while the averages are swapped into the model; call swap_out() first");
  torch::NoGradGuard no_grad;
  const double beta = next_decay();
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    const auto& target = targets_[i];
    auto& average = averages_[i];
    TLKIT_CHECK(target.sizes() == average.sizes() && target.device() == average.device(),
                "EMA: model tensor ", i,
                " changed shape or device since the EMA was built; build the EMA after moving / "
                "reshaping the model");
    if (averaged(i)) {
      // w_avg = beta * w_avg + (1 - beta) * w
      average.mul_(beta).add_(target.detach(), 1.0 - beta);
    } else {
      average.copy_(target.detach());
    }
  }
  ++num_updates_;
}

void ExponentialMovingAverage::swap_in() {
  TLKIT_CHECK(!swapped_,
              "EMA::swap_in(): the averages are already swapped in; call swap_out() first");
  torch::NoGradGuard no_grad;
  raw_.clear();
  raw_.reserve(targets_.size());
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    raw_.push_back(targets_[i].detach().clone());
    targets_[i].detach().copy_(averages_[i]);
  }
  swapped_ = true;
}

void ExponentialMovingAverage::swap_out() {
  TLKIT_CHECK(swapped_, "EMA::swap_out() without swap_in()");
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < targets_.size(); ++i) targets_[i].detach().copy_(raw_[i]);
  raw_.clear();
  swapped_ = false;
}

void ExponentialMovingAverage::copy_to_model() {
  TLKIT_CHECK(!swapped_, "EMA::copy_to_model() while swapped in; call swap_out() first");
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < targets_.size(); ++i) targets_[i].detach().copy_(averages_[i]);
}

void ExponentialMovingAverage::save(torch::serialize::OutputArchive& archive) const {
  archive.write("format_version", c10::IValue(kEmaFormatVersion));
  archive.write("num_updates", c10::IValue(num_updates_));
  archive.write("decay", c10::IValue(options_.decay()));
  archive.write("count", c10::IValue(static_cast<std::int64_t>(averages_.size())));
  for (std::size_t i = 0; i < averages_.size(); ++i)
    archive.write(key("average_", i), averages_[i], /*is_buffer=*/true);
}

void ExponentialMovingAverage::load(torch::serialize::InputArchive& archive) {
  const auto version = read_int(archive, "format_version");
  TLKIT_CHECK(version == kEmaFormatVersion, "EMA state has format version ", version,
              " but this tlkit reads version ", kEmaFormatVersion,
              "; save it again with this version of tlkit");
  const auto count = read_int(archive, "count");
  TLKIT_CHECK(count == static_cast<std::int64_t>(averages_.size()), "EMA state holds ", count,
              " tensors but this EMA tracks ", averages_.size(),
              "; build it on the same model with the same options");
  std::vector<at::Tensor> loaded(averages_.size());
  for (std::size_t i = 0; i < averages_.size(); ++i) {
    try {
      archive.read(key("average_", i), loaded[i], /*is_buffer=*/true);
    } catch (const c10::Error& e) {
      fail("EMA state: cannot read tensor ", i, ": ", e.what_without_backtrace());
    }
    TLKIT_CHECK(loaded[i].sizes() == averages_[i].sizes() &&
                    loaded[i].scalar_type() == averages_[i].scalar_type(),
                "EMA state: tensor ", i, " has shape ", loaded[i].sizes(), " (",
                loaded[i].scalar_type(), ") but the model's has ", averages_[i].sizes(), " (",
                averages_[i].scalar_type(), ")");
  }
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < averages_.size(); ++i) averages_[i].copy_(loaded[i]);
  num_updates_ = read_int(archive, "num_updates");
}

}  // namespace tlkit::train
