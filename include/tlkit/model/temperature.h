#pragma once
// A calibration temperature stored in the classifier itself: the classification layer's weight
// and bias are divided by T, so the model's logits are the calibrated logits z / T and every
// consumer of the file applies it without knowing (tlkit's evaluate, predict, ensembles, ONNX,
// Python's torch.jit.load). The argmax does not change. T is kept beside as the attribute
// `tlkit_temperature` (1 = not calibrated) for readers who want the uncalibrated logits
// (m(x) * m.tlkit_temperature).

#include <tlkit/model/classifier.h>

namespace tlkit::model {

// Divides the classification layer (Classifier::find_head) by `temperature` and records it. Checks
// on a probe batch that the model's output became its old output / T (a model whose head is
// followed by more than a Linear's bias, e.g. a log_softmax, is refused, the weights restored).
void apply_temperature(Classifier& model, double temperature);

// Records T = 1 (not calibrated), e.g. for weights trained further from a calibrated file.
void clear_temperature(Classifier& model);

// The T recorded in the model (1 when it has none).
double stored_temperature(const Classifier& model);

}  // namespace tlkit::model
