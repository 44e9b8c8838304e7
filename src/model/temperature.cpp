#include <tlkit/model/temperature.h>

#include <cmath>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/script.h>

#include <tlkit/core/error.h>

namespace tlkit::model {
namespace {

constexpr const char* kAttribute = "tlkit_temperature";

void record(Classifier& model, double temperature) {
  auto& m = model.module();
  if (m.hasattr(kAttribute)) {
    m.setattr(kAttribute, temperature);
  } else {
    m.register_attribute(kAttribute, c10::FloatType::get(), temperature);
  }
}

// Scales the head's weight and bias in place by `factor`.
void scale_head(Classifier& model, double factor) {
  auto head = model.layers_from(model.find_head()).front().second;
  torch::NoGradGuard no_grad;
  head.attr("weight").toTensor().mul_(factor);
  if (head.hasattr("bias") && head.attr("bias").isTensor()) head.attr("bias").toTensor().mul_(factor);
}

}  // namespace

void apply_temperature(Classifier& model, double temperature) {
  TLKIT_CHECK(std::isfinite(temperature) && temperature > 0,
              "a calibration temperature must be finite and > 0, got ", temperature);
  const bool was_training = model.is_training();
  model.train(false);
  // A batch of 2 random images of the size the model's layer walk was checked at.
  auto shape = model.input_shape(model.layers().front().name);
  shape.at(0) = 2;
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0x7e3b);
  const auto probe = at::randn(shape, gen).to(model.device());
  const auto before = model.forward(probe).to(at::kDouble);
  scale_head(model, 1.0 / temperature);
  const auto after = model.forward(probe).to(at::kDouble);
  const double error = (after * temperature - before).abs().max().item<double>();
  const double scale = before.abs().max().item<double>();
  if (!(error <= 1e-4 * (1 + scale))) {
    scale_head(model, temperature);
    model.train(was_training);
    fail("cannot store a calibration temperature in this model: dividing its classification "
         "layer '", model.find_head(), "' by T did not divide its output by T (off by ", error,
         "); its output is not that layer's logits");
  }
  model.train(was_training);
  record(model, temperature);
}

void clear_temperature(Classifier& model) { record(model, 1.0); }

double stored_temperature(const Classifier& model) {
  const auto& m = model.module();
  if (!m.hasattr(kAttribute)) return 1.0;
  const auto value = m.attr(kAttribute);
  return value.isDouble() ? value.toDouble() : 1.0;
}

}  // namespace tlkit::model
